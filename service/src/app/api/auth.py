"""Role gates: `AnyUser`, `Privileged`, `AdminOnly`, declared per route (polar's idiom).

The caller was authenticated once, before routing (app.web.authentication); a gate only
reads the request state and checks the role.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from app.kernel.errors import AuthenticationError, PermissionDeniedError
from app.kernel.principal import Principal, Role

_BEARER_DESCRIPTION = "JWT from POST /api/v1/auth/login"


class RoleGate(HTTPBearer):
    """`Depends(RoleGate(Role.ADMIN))`: the caller, if authenticated and in one of the roles.

    Being an HTTPBearer, the gate is also the route's security scheme in OpenAPI (the token may
    come from the bearer header or the httpOnly cookie).
    """

    def __init__(self, *roles: Role) -> None:
        super().__init__(auto_error=False, scheme_name="HTTPBearer", description=_BEARER_DESCRIPTION)
        self.allowed = frozenset(roles)

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        state = request.scope.get("state", {})
        failure: BaseException | None = state.get("authentication_failure")
        if failure is not None:
            raise failure  # a refused token (401), or the database down during the check (503)
        principal: Principal | None = state.get("principal")
        if principal is None:
            raise AuthenticationError("Not authenticated")
        if principal.role not in self.allowed:
            raise PermissionDeniedError("Your role does not allow this action")
        return principal


AnyUser = Annotated[Principal, Depends(RoleGate(Role.ADMIN, Role.MANAGER, Role.MEMBER))]
Privileged = Annotated[Principal, Depends(RoleGate(Role.ADMIN, Role.MANAGER))]
AdminOnly = Annotated[Principal, Depends(RoleGate(Role.ADMIN))]
