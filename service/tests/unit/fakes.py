"""In-memory fakes of the application ports: use cases tested without a database."""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Self

from app.identity.application.ports import IssuedToken, VerifiedToken
from app.identity.domain.models import User
from app.kernel.events import DomainEvent
from app.kernel.pagination import Cursor, PageRequest
from app.kernel.principal import Principal, Role
from app.projects.domain.models import Project, ProjectStatus
from app.projects.presentation.schemas import PageMeta, ProjectPage, ProjectRead


class FakeUserRepository:
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, User] = {}

    async def add(self, user: User) -> None:
        self.rows[user.id] = copy.copy(user)

    async def get(self, user_id: uuid.UUID) -> User | None:
        user = self.rows.get(user_id)
        return copy.copy(user) if user else None

    async def get_by_email(self, email: str) -> User | None:
        return next((copy.copy(u) for u in self.rows.values() if u.email == email), None)

    async def lock_admins(self) -> int:
        return sum(u.role is Role.ADMIN for u in self.rows.values())

    async def save_role(self, user: User) -> bool:
        others = [u for u in self.rows.values() if u.role is Role.ADMIN and u.id != user.id]
        if self.rows[user.id].role is Role.ADMIN and user.role is not Role.ADMIN and not others:
            return False
        self.rows[user.id] = copy.copy(user)
        return True

    async def save_password(self, user: User) -> None:
        self.rows[user.id] = copy.copy(user)

    async def any_admin(self) -> bool:
        return any(u.role is Role.ADMIN for u in self.rows.values())


class FakeProjectRepository:
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, Project] = {}
        self.seen: Callable[[Project], None] = lambda _: None  # set by the unit of work

    async def add(self, project: Project) -> None:
        self.rows[project.id] = copy.copy(project)
        self.seen(project)

    async def get(self, project_id: uuid.UUID) -> Project | None:
        project = self.rows.get(project_id)
        if project is None:
            return None
        loaded = copy.copy(project)
        self.seen(loaded)
        return loaded

    async def save(self, project: Project) -> None:
        self.rows[project.id] = copy.copy(project)

    async def delete(self, project_id: uuid.UUID) -> None:
        self.rows.pop(project_id, None)


class FakeUnitOfWork:
    """Shares the repositories across instances, like a database; records commits and events."""

    def __init__(self) -> None:
        self.users = FakeUserRepository()
        self.projects = FakeProjectRepository()
        self.commits = 0
        self.outbox: list[DomainEvent] = []
        self._tracked: list[Project] = []

    def __call__(self) -> Self:
        return self

    async def __aenter__(self) -> Self:
        self._tracked = []
        self.projects.seen = self._tracked.append  # as SqlUnitOfWork: what passes through is seen
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._tracked = []

    async def commit(self) -> None:
        self.commits += 1
        for aggregate in self._tracked:
            self.outbox.extend(aggregate.pull_events())


class FakeProjectReader:
    """The read model over the fake repository's rows, written by pydantic (the shape's owner)."""

    def __init__(self, repository: FakeProjectRepository) -> None:
        self._repository = repository

    async def page_json(
        self, *, owner_id: uuid.UUID | None, status: ProjectStatus | None, page: PageRequest
    ) -> bytes:
        rows = sorted(self._repository.rows.values(), key=lambda p: (p.created_at, str(p.id)), reverse=True)
        rows = [p for p in rows if owner_id is None or p.owner_id == owner_id]
        rows = [p for p in rows if status is None or p.status is status]
        if page.after:
            key = (page.after.created_at, str(page.after.id))
            rows = [p for p in rows if (p.created_at, str(p.id)) < key]
        items = rows[: page.limit]
        cursor = Cursor(items[-1].created_at, items[-1].id).encode() if len(rows) > page.limit else None
        meta = PageMeta(limit=page.limit, has_more=cursor is not None, next_cursor=cursor)
        body = ProjectPage(data=[ProjectRead.model_validate(p) for p in items], meta=meta)
        return body.model_dump_json(by_alias=True).encode()


class FakeHasher:
    """Reversible 'hash' so tests run in microseconds; the real argon2 has its own tests."""

    def __init__(self) -> None:
        self.verifications = 0

    async def hash(self, password: str) -> str:
        return f"fake${password}"

    async def verify(self, password: str, password_hash: str) -> tuple[bool, str | None]:
        self.verifications += 1
        return password_hash == f"fake${password}", None


class FakeTokens:
    """Readable tokens '<user id>:<role>:<version>:<jti>' (the real JWTs have their own tests)."""

    def issue(self, principal: Principal, version: int) -> IssuedToken:
        return IssuedToken(f"{principal.user_id}:{principal.role.value}:{version}:{uuid.uuid4().hex}", 60)

    def verify(self, token: str) -> VerifiedToken:
        user_id, role, version, jti = token.split(":")
        return VerifiedToken(Principal(uuid.UUID(user_id), Role(role)), jti, time.time() + 60, int(version))
