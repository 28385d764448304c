"""Projects: the aggregate, its rules and its events. Plain Python, no framework."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from app.kernel.errors import InvalidInputError
from app.kernel.events import DomainEvent
from app.kernel.principal import Principal

NAME_MIN_LENGTH = 3
NAME_MAX_LENGTH = 100
DESCRIPTION_MAX_LENGTH = 500


class ProjectType(StrEnum):
    INTERNAL = "internal"
    CLIENT = "client"
    RESEARCH = "research"


class ProjectStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    ARCHIVED = "archived"


@dataclass(frozen=True, kw_only=True)
class ProjectCreated(DomainEvent):
    event_type: ClassVar[str] = "project.created"
    project_id: uuid.UUID
    owner_id: uuid.UUID
    name: str

    def payload(self) -> dict[str, Any]:
        return {"projectId": str(self.project_id), "ownerId": str(self.owner_id), "name": self.name}


def _check_name(name: str) -> str:
    name = name.strip()
    if not NAME_MIN_LENGTH <= len(name) <= NAME_MAX_LENGTH:
        raise InvalidInputError(
            "Invalid project name",
            {"name": [f"must be {NAME_MIN_LENGTH} to {NAME_MAX_LENGTH} characters (without edge spaces)"]},
        )
    return name


def _check_description(description: str | None) -> str | None:
    if description is not None and len(description) > DESCRIPTION_MAX_LENGTH:
        raise InvalidInputError(
            "Invalid project description",
            {"description": [f"must be at most {DESCRIPTION_MAX_LENGTH} characters"]},
        )
    return description


@dataclass
class Project:
    id: uuid.UUID
    name: str
    description: str | None
    type: ProjectType
    status: ProjectStatus
    owner_id: uuid.UUID
    created_at: datetime
    updated_at: datetime
    _events: list[DomainEvent] = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def create(
        cls, *, owner_id: uuid.UUID, name: str, description: str | None, type: ProjectType, now: datetime
    ) -> Project:
        project = cls(
            id=uuid.uuid4(),
            name=_check_name(name),
            description=_check_description(description),
            type=type,
            status=ProjectStatus.PENDING,
            owner_id=owner_id,
            created_at=now,
            updated_at=now,
        )
        project._events.append(
            ProjectCreated(project_id=project.id, owner_id=owner_id, name=project.name, occurred_at=now)
        )
        return project

    def rename(self, name: str) -> None:
        self.name = _check_name(name)

    def describe(self, description: str | None) -> None:
        self.description = _check_description(description)

    def change_type(self, type: ProjectType) -> None:
        self.type = type

    def change_status(self, status: ProjectStatus) -> None:
        self.status = status

    def touch(self, now: datetime) -> None:
        self.updated_at = now

    # --- access rules: members own their projects; managers and admins see all ---
    def is_visible_to(self, principal: Principal) -> bool:
        return principal.is_privileged or self.owner_id == principal.user_id

    @staticmethod
    def is_deletable_by(principal: Principal) -> bool:
        return principal.is_privileged

    def pull_events(self) -> list[DomainEvent]:
        events, self._events = self._events, []
        return events
