"""Identity: users and their roles. Plain Python, no framework."""

from __future__ import annotations

import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime

from app.kernel.principal import Principal, Role


def normalize_email(email: str) -> str:
    """The one form of an address, used to store it, to look it up and to key its rate limit.

    Edge whitespace off, lower case, NFC (email-validator's form): an address typed in
    decomposed form ("ju\u0308rgen@...") finds the account registered as "jürgen@...".
    """
    return unicodedata.normalize("NFC", email.strip().lower())


@dataclass
class User:
    id: uuid.UUID
    email: str
    name: str
    password_hash: str
    role: Role
    created_at: datetime
    updated_at: datetime
    # Bumped by every change that must end the user's sessions (role, password): a token
    # carries the version it was issued at, and an older one is refused.
    token_version: int = 0

    @property
    def principal(self) -> Principal:
        return Principal(user_id=self.id, role=self.role)

    def change_role(self, role: Role, now: datetime) -> None:
        self.role = role
        self.updated_at = now
        self.token_version += 1

    def change_password(self, password_hash: str, now: datetime) -> None:
        self.password_hash = password_hash
        self.updated_at = now
        self.token_version += 1
