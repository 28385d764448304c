"""Who is calling: the shared kernel every context uses for authorization."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    MEMBER = "member"


# Roles that may see and manage every project, not only their own.
PRIVILEGED_ROLES = frozenset({Role.ADMIN, Role.MANAGER})


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    role: Role

    @property
    def is_privileged(self) -> bool:
        return self.role in PRIVILEGED_ROLES
