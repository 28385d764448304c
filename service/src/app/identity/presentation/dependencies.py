"""Authentication and RBAC: one central dependency, declared per route.

A token is accepted from the `Authorization: Bearer` header or the httpOnly cookie.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from app.composition import Container, container_of
from app.core.errors import AuthenticationError, PermissionDeniedError
from app.core.principal import Principal, Role
from app.observability.context import set_user_id

_bearer = HTTPBearer(auto_error=False, description="JWT from POST /api/v1/auth/login")


def _presented_token(request: Request, container: Container, bearer: str | None) -> str | None:
    return bearer or request.cookies.get(container.settings.cookie_name)


BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def current_principal(request: Request, credentials: BearerCredentials) -> Principal:
    return _authenticate(request, credentials)


def _authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    container = container_of(request)
    token = _presented_token(request, container, credentials.credentials if credentials else None)
    if not token:
        raise AuthenticationError("Not authenticated")
    principal = container.tokens.verify(token)
    set_user_id(str(principal.user_id))
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def presented_principal(request: Request) -> Principal | None:
    """The caller if a valid token is presented, else None: for rate-limit keys, never for access.

    A plain function, not a dependency: the router-level rate limit calls it directly (one
    dependency node less per request); verified tokens are cached, so the route's own
    `current_principal` costs a dictionary lookup after it."""
    container = container_of(request)
    scheme, bearer = get_authorization_scheme_param(request.headers.get("Authorization"))
    token = _presented_token(request, container, bearer if scheme.lower() == "bearer" else None)
    if not token:
        return None
    try:
        return container.tokens.verify(token)
    except AuthenticationError:
        return None


def require_roles(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """RBAC gate for a route: `Depends(require_roles(Role.ADMIN))`.

    It authenticates itself rather than depending on `current_principal`: one dependency
    node less for FastAPI to solve on every request (same bearer scheme in OpenAPI)."""
    allowed = frozenset(roles)

    async def check(request: Request, credentials: BearerCredentials) -> Principal:
        principal = _authenticate(request, credentials)
        if principal.role not in allowed:
            raise PermissionDeniedError("Your role does not allow this action")
        return principal

    return check


AnyUser = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.MANAGER, Role.MEMBER))]
Privileged = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.MANAGER))]
AdminOnly = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
