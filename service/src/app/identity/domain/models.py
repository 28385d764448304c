"""Identity: users and their roles. Plain Python, no framework."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from app.core.errors import InvalidInputError
from app.core.principal import Principal, Role

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 128  # bounds the hashing cost an attacker can ask for


def normalize_email(email: str) -> str:
    return email.strip().lower()


def check_password_policy(password: str, email: str) -> None:
    problems: list[str] = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"must be at least {MIN_PASSWORD_LENGTH} characters long")
    if len(password) > MAX_PASSWORD_LENGTH:
        problems.append(f"must be at most {MAX_PASSWORD_LENGTH} characters long")
    if password.strip().lower() == normalize_email(email):
        problems.append("must not be the email address")
    if problems:
        raise InvalidInputError("Password does not meet the policy", {"password": problems})


@dataclass
class User:
    id: uuid.UUID
    email: str
    name: str
    password_hash: str
    role: Role
    created_at: datetime
    updated_at: datetime

    @property
    def principal(self) -> Principal:
        return Principal(user_id=self.id, role=self.role)

    def change_role(self, role: Role, now: datetime) -> None:
        self.role = role
        self.updated_at = now
