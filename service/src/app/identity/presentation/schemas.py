from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import EmailStr, Field

from app.api.schemas import ApiModel, ResponseModel
from app.api.text import SafeText
from app.identity.domain.passwords import MAX_PASSWORD_LENGTH
from app.kernel.principal import Role

# Passwords keep their edge spaces (they are part of the secret); the policy applies on register.
Password = Annotated[str, SafeText(min_length=1, max_length=MAX_PASSWORD_LENGTH, strip=False)]


class RegisterRequest(ApiModel):
    email: Annotated[EmailStr, SafeText(max_length=320)]
    password: Password
    name: Annotated[str, SafeText(min_length=1, max_length=100)]


class LoginRequest(ApiModel):
    email: Annotated[str, SafeText(min_length=1, max_length=320)]
    password: Password


class PasswordChangeRequest(ApiModel):
    current_password: Password
    new_password: Password


class RoleUpdateRequest(ApiModel):
    role: Role


class UserResponse(ResponseModel):
    id: uuid.UUID
    email: str
    name: str
    role: Role
    created_at: datetime


class TokenResponse(ResponseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - a scheme name, not a secret
    expires_in: int = Field(description="seconds until the token expires")
