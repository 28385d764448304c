"""Authentication and RBAC: one central dependency, declared per route.

A token is accepted from the `Authorization: Bearer` header or the httpOnly cookie.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from app.composition import Container, container_of
from app.core.errors import AuthenticationError, PermissionDeniedError
from app.core.principal import Principal, Role
from app.identity.application.ports import VerifiedToken
from app.observability.context import set_user_id

_BEARER_DESCRIPTION = "JWT from POST /api/v1/auth/login"


def _presented_token(request: Request, container: Container) -> str | None:
    scheme, bearer = get_authorization_scheme_param(request.headers.get("Authorization"))
    if bearer and scheme.lower() == "bearer":
        return bearer
    return request.cookies.get(container.settings.cookie_name)


def presented_principal(request: Request) -> Principal | None:
    """The caller if a valid token is presented, else None: for rate-limit keys, never for access.

    Verified tokens are cached, so the route's own role gate costs a dictionary lookup after it."""
    container = container_of(request)
    token = _presented_token(request, container)
    if not token:
        return None
    try:
        return container.tokens.verify(token).principal
    except AuthenticationError:
        return None


def presented_token(request: Request) -> VerifiedToken | None:
    """The presented token if it verifies (revoked or not), else None: for logout."""
    container = container_of(request)
    token = _presented_token(request, container)
    if not token:
        return None
    try:
        return container.tokens.verify(token)
    except AuthenticationError:
        return None


class RoleGate(HTTPBearer):
    """Authentication and RBAC for a route in one dependency: `Depends(RoleGate(Role.ADMIN))`.

    The token comes from the bearer header or the httpOnly cookie. Being an HTTPBearer, the
    gate is also the route's security scheme in OpenAPI; being one object, it is one
    dependency node for FastAPI to solve per request instead of a gate plus a scheme.
    """

    def __init__(self, *roles: Role) -> None:
        super().__init__(auto_error=False, scheme_name="HTTPBearer", description=_BEARER_DESCRIPTION)
        self.allowed = frozenset(roles)

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        container = container_of(request)
        token = _presented_token(request, container)
        if not token:
            raise AuthenticationError("Not authenticated")
        verified = container.tokens.verify(token)
        set_user_id(str(verified.principal.user_id))
        # Revocation, and for privileged tokens the current role from the database.
        principal = await container.identity.principal_for(verified)
        if principal.role not in self.allowed:
            raise PermissionDeniedError("Your role does not allow this action")
        return principal


AnyUser = Annotated[Principal, Depends(RoleGate(Role.ADMIN, Role.MANAGER, Role.MEMBER))]
Privileged = Annotated[Principal, Depends(RoleGate(Role.ADMIN, Role.MANAGER))]
AdminOnly = Annotated[Principal, Depends(RoleGate(Role.ADMIN))]
