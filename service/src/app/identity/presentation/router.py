from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request, Response, status

from app.composition import IdentityServiceDep, SettingsDep
from app.core.http import error_responses
from app.edge.ratelimit import RateLimiterDep, RouteClass, client_ip_key, email_key, limit_per_client_ip
from app.identity.application.services import RegisterUser
from app.identity.presentation.dependencies import AdminOnly, AnyUser
from app.identity.presentation.schemas import (
    LoginRequest,
    RegisterRequest,
    RoleUpdateRequest,
    TokenResponse,
    UserResponse,
)

auth_router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
users_router = APIRouter(prefix="/api/v1/users", tags=["users"])


async def limit_login_attempts(body: LoginRequest, request: Request, limiter: RateLimiterDep) -> None:
    """Strict limit per client IP + email: one account cannot be guessed at from one address."""
    await limiter.check(RouteClass.LOGIN, client_ip_key(request), email_key(body.email))


@auth_router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserResponse,
    responses=error_responses(409, 413, 422, 429),
    dependencies=[Depends(limit_per_client_ip(RouteClass.REGISTER))],
)
async def register(body: RegisterRequest, identity: IdentityServiceDep) -> UserResponse:
    """Create a member account. Password: at least 12 characters, not the email."""
    user = await identity.register(RegisterUser(email=body.email, password=body.password, name=body.name))
    return UserResponse.model_validate(user)


@auth_router.post(
    "/login",
    response_model=TokenResponse,
    responses=error_responses(401, 422, 429),
    dependencies=[Depends(limit_login_attempts)],
)
async def login(
    body: LoginRequest, response: Response, identity: IdentityServiceDep, settings: SettingsDep
) -> TokenResponse:
    """Exchange credentials for a JWT, returned in the body and as an httpOnly cookie."""
    _, token = await identity.authenticate(body.email, body.password)
    response.set_cookie(
        settings.cookie_name,
        token.token,
        max_age=token.expires_in,
        httponly=True,
        secure=settings.cookie_secure,
        samesite="lax",
        path="/",
    )
    return TokenResponse(access_token=token.token, expires_in=token.expires_in)


@auth_router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(429))
async def logout(settings: SettingsDep) -> Response:
    """Clear the session cookie (bearer tokens simply expire)."""
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(
        settings.cookie_name, path="/", httponly=True, secure=settings.cookie_secure, samesite="lax"
    )
    return response


@users_router.get("/me", response_model=UserResponse, responses=error_responses(401, 404, 429))
async def me(principal: AnyUser, identity: IdentityServiceDep) -> UserResponse:
    """The authenticated caller."""
    return UserResponse.model_validate(await identity.get_user(principal.user_id))


@users_router.patch(
    "/{user_id}/role", response_model=UserResponse, responses=error_responses(401, 403, 404, 422, 429)
)
async def change_role(
    user_id: uuid.UUID, body: RoleUpdateRequest, admin: AdminOnly, identity: IdentityServiceDep
) -> UserResponse:
    """Change a user's role (admin only). Takes effect at the user's next login."""
    return UserResponse.model_validate(await identity.change_role(admin, user_id, body.role))
