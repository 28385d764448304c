"""Test data builders: every test states only what matters to it."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.identity.domain.models import User
from app.kernel.clock import utcnow
from app.kernel.principal import Principal, Role
from app.projects.domain.models import Project, ProjectStatus, ProjectType
from app.settings import Settings

_sequence = itertools.count(1)
DEFAULT_PASSWORD = "correct horse battery staple"


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}{next(_sequence)}-{uuid.uuid4().hex[:6]}@example.com"


def a_user(*, role: Role = Role.MEMBER, email: str | None = None, password_hash: str = "hash") -> User:
    now = utcnow()
    return User(
        id=uuid.uuid4(),
        email=email or unique_email(),
        name="Test User",
        password_hash=password_hash,
        role=role,
        created_at=now,
        updated_at=now,
    )


def a_principal(role: Role = Role.MEMBER, user_id: uuid.UUID | None = None) -> Principal:
    return Principal(user_id=user_id or uuid.uuid4(), role=role)


def a_project(
    *,
    owner_id: uuid.UUID | None = None,
    status: ProjectStatus = ProjectStatus.PENDING,
    created_at: datetime | None = None,
    name: str | None = None,
    description: str | None = None,
) -> Project:
    created = created_at or utcnow()
    return Project(
        id=uuid.uuid4(),
        name=name or f"Project {next(_sequence)}",
        description=description,
        type=ProjectType.INTERNAL,
        status=status,
        owner_id=owner_id or uuid.uuid4(),
        created_at=created,
        updated_at=created,
    )


def projects_over_time(owner_id: uuid.UUID, count: int, start: datetime | None = None) -> list[Project]:
    """`count` projects one second apart, some sharing a timestamp to exercise the id tiebreak."""
    start = start or utcnow() - timedelta(days=1)
    return [a_project(owner_id=owner_id, created_at=start + timedelta(seconds=i // 2)) for i in range(count)]


def project_payload(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": f"Project {next(_sequence)}", "type": "internal", "description": "A test"}
    body.update(overrides)
    return body


@dataclass
class ApiUser:
    id: str
    email: str
    password: str
    role: Role
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


TEST_SECRET = "test-secret-" + "x" * 40
BACKENDS = ["sqlite", "postgres"]


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "test",
        "database_url": database_url,
        "jwt_secret": TEST_SECRET,
        "cookie_secure": False,
        "log_json": True,
        "rate_limit_enabled": False,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


MakeUser = Callable[..., Awaitable["ApiUser"]]
