"""`kit dead-letters`: locally on PostgreSQL and SQLite, and in the cluster through a real Job run."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from app.migrate import upgrade
from app.outbox.tables import outbox_events
from app.persistence.database import create_engine
from app.settings import Settings
from kit import k8s_checks
from kit.cli import errors
from tests.cli.conftest import Result, StandIn

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _seed(database_url: str) -> list[uuid.UUID]:
    """A migrated database with three dead-lettered events and one pending."""
    upgrade(Settings(database_url=database_url))
    ids = [uuid.uuid4() for _ in range(4)]

    async def write() -> None:
        engine = create_engine(Settings(database_url=database_url))
        async with engine.begin() as conn:
            for i, event_id in enumerate(ids):
                await conn.execute(
                    insert(outbox_events).values(
                        id=event_id,
                        event_type="project.created",
                        payload={"eventId": str(event_id)},
                        status="pending" if i == 3 else "dead",
                        attempts=8,
                        available_at=NOW,
                        created_at=NOW + timedelta(minutes=i),
                        last_error=f"HTTP 4{i}0 from the receiver",
                    )
                )
        await engine.dispose()

    asyncio.run(write())
    return ids


def _rows(database_url: str) -> dict[uuid.UUID, tuple[str, int, str | None]]:
    async def read() -> dict[uuid.UUID, tuple[str, int, str | None]]:
        engine = create_engine(Settings(database_url=database_url))
        async with engine.connect() as conn:
            rows = (await conn.execute(select(outbox_events))).all()
        await engine.dispose()
        return {r.id: (r.status, r.attempts, r.last_error) for r in rows}

    return asyncio.run(read())


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}"
    return str(request.getfixturevalue("postgres_database"))


def test_list_replay_discard_locally(kit: Callable[..., Result], database_url: str) -> None:
    ids = _seed(database_url)
    listed = kit("dead-letters", "list", "--database-url", database_url, "--json")
    assert listed.code == 0, listed.err
    document = json.loads(listed.out)
    assert document["total"] == 3
    assert [e["id"] for e in document["events"]] == [str(i) for i in ids[:3]]  # oldest first
    assert document["events"][1]["last_error"] == "HTTP 410 from the receiver"

    replayed = kit("dead-letters", "replay", "--database-url", database_url, "--event-id", str(ids[0]))
    assert replayed.code == 0
    assert replayed.out.strip() == "1 event(s) replayed (pending again, fresh attempts)"
    discarded = kit(
        "dead-letters",
        "discard",
        "--database-url",
        database_url,
        "--event-id",
        str(ids[1]),
        "--reason",
        "OPS-42",
        "--yes",
    )
    assert discarded.code == 0
    rows = _rows(database_url)
    assert rows[ids[0]] == ("pending", 0, None)
    assert rows[ids[1]] == ("delivered", 8, "discarded by kit dead-letters: OPS-42")
    assert rows[ids[2]] == ("dead", 8, "HTTP 420 from the receiver")
    assert rows[ids[3]][0] == "pending"  # never touched

    # Asking for an event that is not dead-lettered (the pending one) is a failure, said so.
    again = kit("dead-letters", "replay", "--database-url", database_url, "--event-id", str(ids[3]))
    assert again.code == errors.FAILED
    assert "only 0 of 1 requested events were dead-lettered" in again.err
    everything = kit("dead-letters", "replay", "--database-url", database_url, "--all", "--json")
    assert json.loads(everything.out) == {"replayed": 1, "requested": None}


def test_bad_input_is_one_line(kit: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    result = kit("dead-letters", "list")
    assert (result.code, result.err.strip()) == (
        errors.USAGE,
        "error: which database? --env <env> (in the cluster) or --database-url / $DATABASE_URL",
    )
    result = kit("dead-letters", "replay", "--database-url", "sqlite+aiosqlite:///x.db", "--event-id", "nope")
    assert (result.code, result.err.strip()) == (errors.USAGE, "error: not an event id (UUID): 'nope'")
    result = kit("dead-letters", "list", "--database-url", "postgresql+asyncpg://u@127.0.0.1:1/none")
    assert result.code == errors.UNREACHABLE
    assert result.err.startswith("error: database unreachable or not migrated")


def test_in_the_cluster_a_job_in_the_workers_image_does_it(
    kit: Callable[..., Result], standin: Callable[..., StandIn], postgres_database: str
) -> None:
    ids = _seed(postgres_database)
    secrets = dict.fromkeys(k8s_checks.SECRET_KEYS, "unused-in-this-test")
    secrets |= {"DATABASE_URL": postgres_database, "JWT_SECRET": "x" * 48}
    api = standin("staging", "healthy", secrets=secrets)

    listed = kit("dead-letters", "list", "--env", "staging", "--json", *api.args())
    assert listed.code == 0, listed.err
    assert [e["id"] for e in json.loads(listed.out)["events"]] == [str(i) for i in ids[:3]]
    discarded = kit(
        "dead-letters",
        "discard",
        "--env",
        "staging",
        "--event-id",
        str(ids[2]),
        "--reason",
        "OPS-7",
        "--yes",
        *api.args(),
    )
    assert discarded.code == 0, discarded.err
    assert _rows(postgres_database)[ids[2]][0] == "delivered"

    created = [path for method, path in api.cluster.requests if method == "POST"]
    deleted = [path for method, path in api.cluster.requests if method == "DELETE"]
    assert len(created) == 2 and len(deleted) == 2  # one Job per command, removed afterwards
    assert not api.cluster.of_kind("Job")


def test_the_job_has_a_writable_tmp_and_its_networkpolicy_admits_the_database(
    standin: Callable[..., StandIn],
) -> None:
    from kit.cli.dead_letters import job_manifest

    api = standin("prod", "healthy")
    worker = api.cluster.objects[("Deployment", "reference-service-worker")]
    job = job_manifest(worker, "kit-dead-letters-list-abc", ["dead-letters", "list", "--json"], 300)
    template = k8s_checks.pod_templates([job])[0]
    assert k8s_checks.writable_tmp_violations(template) == []  # pod security: test_k8s_checkov.py
    assert (
        job["spec"]["template"]["spec"]["containers"][0]["image"]
        == worker["spec"]["template"]["spec"]["containers"][0]["image"]
    )
    policies = [
        p
        for p in api.cluster.of_kind("NetworkPolicy")
        if p["spec"]["podSelector"].get("matchLabels")
        and all(template.labels.get(k) == v for k, v in p["spec"]["podSelector"]["matchLabels"].items())
    ]
    assert [p["metadata"]["name"] for p in policies] == ["reference-service-kit-ops"]
    ports = {port["port"] for rule in policies[0]["spec"]["egress"] for port in rule["ports"]}
    assert ports == {53, 5432}
