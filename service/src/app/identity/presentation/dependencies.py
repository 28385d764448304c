"""Authentication and RBAC: one central dependency, declared per route.

A token is accepted from the `Authorization: Bearer` header or the httpOnly cookie.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.composition import ContainerDep
from app.core.errors import AuthenticationError, PermissionDeniedError
from app.core.principal import Principal, Role
from app.observability.context import set_user_id

_bearer = HTTPBearer(auto_error=False, description="JWT from POST /api/v1/auth/login")


async def current_principal(
    request: Request,
    container: ContainerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    token = credentials.credentials if credentials else request.cookies.get(container.settings.cookie_name)
    if not token:
        raise AuthenticationError("Not authenticated")
    principal = container.tokens.verify(token)
    set_user_id(str(principal.user_id))
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """RBAC gate for a route: `Depends(require_roles(Role.ADMIN))`."""
    allowed = frozenset(roles)

    async def check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in allowed:
            raise PermissionDeniedError("Your role does not allow this action")
        return principal

    return check


AnyUser = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.MANAGER, Role.MEMBER))]
Privileged = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.MANAGER))]
AdminOnly = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
