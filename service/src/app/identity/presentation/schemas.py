from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import EmailStr, Field

from app.core.principal import Role
from app.core.schemas import ApiModel, ResponseModel
from app.identity.domain.models import MAX_PASSWORD_LENGTH


class RegisterRequest(ApiModel):
    email: EmailStr
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)
    name: str = Field(min_length=1, max_length=100)


class LoginRequest(ApiModel):
    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


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
