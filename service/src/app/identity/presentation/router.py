from __future__ import annotations

import hashlib
import uuid

from fastapi import APIRouter, Depends, Request, Response, status

from app.api.auth import AdminOnly, AnyUser
from app.api.dependencies import SettingsDep
from app.api.errors import error_responses
from app.identity.application.ports import VerifiedToken
from app.identity.application.services import ChangePassword, RegisterUser
from app.identity.domain.models import normalize_email
from app.identity.presentation.dependencies import IdentityServiceDep
from app.identity.presentation.schemas import (
    LoginRequest,
    PasswordChangeRequest,
    RegisterRequest,
    RoleUpdateRequest,
    TokenResponse,
    UserResponse,
)
from app.ratelimit.limiter import RateLimiterDep, RouteClass, client_ip_key, limit_per_client_ip
from app.settings import Settings

auth_router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
users_router = APIRouter(prefix="/api/v1/users", tags=["users"])


def email_key(email: str) -> str:
    # Hashed: counters in Redis should not hold addresses. The same normalisation as the
    # account lookup, so every spelling that reaches one account shares one budget.
    return "email:" + hashlib.sha256(normalize_email(email).encode()).hexdigest()[:32]


async def limit_login_attempts(body: LoginRequest, request: Request, limiter: RateLimiterDep) -> None:
    """Strict limit per client IP + email: one account cannot be guessed at from one address;
    a looser one per account from all addresses together."""
    await limiter.check(RouteClass.LOGIN, client_ip_key(request), email_key(body.email))
    await limiter.check(RouteClass.LOGIN_ACCOUNT, email_key(body.email))


@auth_router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserResponse,
    responses=error_responses(409, 422, 429),
    dependencies=[Depends(limit_per_client_ip(RouteClass.REGISTER))],
)
async def register(body: RegisterRequest, identity: IdentityServiceDep) -> UserResponse:
    """Create a member account.

    Password (NIST SP 800-63B): 12 to 128 characters after NFKC normalisation, not only
    whitespace, not a common or breached password (also not one padded with digits or
    repeated), at least 5 different characters, not the email, the name or the service's name.
    """
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


def _cleared_cookie_response(settings: Settings) -> Response:
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(
        settings.cookie_name, path="/", httponly=True, secure=settings.cookie_secure, samesite="lax"
    )
    return response


@auth_router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(429))
async def logout(request: Request, settings: SettingsDep, identity: IdentityServiceDep) -> Response:
    """End the session: the presented token (bearer or cookie) is revoked server-side, and the
    cookie cleared. Without a valid token there is nothing to revoke; the answer is the same."""
    token: VerifiedToken | None = request.scope.get("state", {}).get("verified_token")
    if token is not None:
        await identity.logout(token)
    return _cleared_cookie_response(settings)


@users_router.get("/me", response_model=UserResponse, responses=error_responses(401, 404, 429))
async def me(principal: AnyUser, identity: IdentityServiceDep) -> UserResponse:
    """The authenticated caller."""
    return UserResponse.model_validate(await identity.get_user(principal.user_id))


async def limit_password_attempts(request: Request, principal: AnyUser, limiter: RateLimiterDep) -> None:
    """The login limit, per client IP + account: a stolen token cannot guess the password fast."""
    await limiter.check(RouteClass.LOGIN, client_ip_key(request), f"user:{principal.user_id}")


@users_router.post(
    "/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 422, 429),
    dependencies=[Depends(limit_password_attempts)],
)
async def change_password(
    body: PasswordChangeRequest, principal: AnyUser, identity: IdentityServiceDep, settings: SettingsDep
) -> Response:
    """Change the caller's password. Every session of the user ends (this one too): log in again."""
    await identity.change_password(
        principal, ChangePassword(current_password=body.current_password, new_password=body.new_password)
    )
    return _cleared_cookie_response(settings)


@users_router.patch(
    "/{user_id}/role", response_model=UserResponse, responses=error_responses(401, 403, 404, 409, 422, 429)
)
async def change_role(
    user_id: uuid.UUID, body: RoleUpdateRequest, admin: AdminOnly, identity: IdentityServiceDep
) -> UserResponse:
    """Change a user's role (admin only, decided on the caller's current role).

    The user's sessions end at once (log in again for the new role). 409 when it would
    leave no admin."""
    return UserResponse.model_validate(await identity.change_role(admin, user_id, body.role))
