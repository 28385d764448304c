"""ProjectService.create_idempotently with fakes: the rules, without a database.

The SQL store's claim (locking, expiry, concurrency) is tested on both databases in
service/tests/api/test_idempotency.py.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from app.idempotency.port import (
    IdempotencyKeyReusedError,
    IdempotencyRecord,
    IdempotentRequest,
    StoredResponse,
)
from app.projects.application.services import CreateProject, ProjectService
from app.projects.domain.models import Project, ProjectType
from service.tests.builders import a_principal
from service.tests.unit.fakes import FakeProjectReader, FakeUnitOfWork


class FakeIdempotencyStore:
    """Keeps the first record per (user, key); expiry is the SQL store's business."""

    def __init__(self) -> None:
        self.records: dict[tuple[uuid.UUID, str], IdempotencyRecord] = {}

    async def claim(self, record: IdempotencyRecord) -> IdempotencyRecord | None:
        existing = self.records.get((record.user_id, record.key))
        if existing is None:
            self.records[(record.user_id, record.key)] = record
        return existing


@pytest.fixture
def uow() -> FakeUnitOfWork:
    unit = FakeUnitOfWork()
    unit.idempotency = FakeIdempotencyStore()  # type: ignore[attr-defined]
    return unit


def request(key: str, request_hash: str = "h1") -> IdempotentRequest[Project]:
    def render(project: Project) -> StoredResponse:
        return StoredResponse(201, {"id": str(project.id), "name": project.name}, f"/p/{project.id}")

    return IdempotentRequest(key=key, request_hash=request_hash, ttl=timedelta(hours=1), render=render)


async def test_first_call_creates_and_records_the_rendered_response(uow: FakeUnitOfWork) -> None:
    service, owner = ProjectService(uow, FakeProjectReader(uow.projects)), a_principal()
    outcome = await service.create_idempotently(
        owner, CreateProject(name="Apollo", type=ProjectType.CLIENT), request("k")
    )
    assert not outcome.replayed
    [project] = uow.projects.rows.values()
    assert outcome.response == StoredResponse(
        201, {"id": str(project.id), "name": "Apollo"}, f"/p/{project.id}"
    )
    record = uow.idempotency.records[(owner.user_id, "k")]  # type: ignore[attr-defined]
    assert record.response == outcome.response
    assert record.expires_at - record.created_at == timedelta(hours=1)
    assert (uow.commits, len(uow.outbox)) == (1, 1)


async def test_a_replay_returns_the_record_and_commits_nothing(uow: FakeUnitOfWork) -> None:
    service, owner = ProjectService(uow, FakeProjectReader(uow.projects)), a_principal()
    command = CreateProject(name="Apollo", type=ProjectType.CLIENT)
    first = await service.create_idempotently(owner, command, request("k"))
    again = await service.create_idempotently(owner, command, request("k"))
    assert again.replayed and again.response == first.response
    assert (len(uow.projects.rows), uow.commits, len(uow.outbox)) == (1, 1, 1)


async def test_another_request_under_the_same_key_is_refused(uow: FakeUnitOfWork) -> None:
    service, owner = ProjectService(uow, FakeProjectReader(uow.projects)), a_principal()
    await service.create_idempotently(
        owner, CreateProject(name="Apollo", type=ProjectType.CLIENT), request("k")
    )
    with pytest.raises(IdempotencyKeyReusedError) as refused:
        await service.create_idempotently(
            owner, CreateProject(name="Gemini", type=ProjectType.CLIENT), request("k", request_hash="h2")
        )
    assert list(refused.value.details) == ["Idempotency-Key"]
    assert len(uow.projects.rows) == 1
