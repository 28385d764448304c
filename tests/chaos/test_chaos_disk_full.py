"""The data volume full under load (SQLite on a small tmpfs, filled to the last byte): writes get a
clear 507 with the standard error body, reads keep working, nothing is corrupted, no acknowledged
write is lost, no project is left without its event; freeing space heals it without a restart."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from app.api.errors import DATABASE_FAILURE_RESPONSES
from app.persistence.failures import DatabaseFailure
from tests.chaos.harness import (
    Figures,
    Profile,
    leaky_5xx,
    migrated_stack,
    report,
    settle_events,
    start_load,
    stored_project_ids,
)
from testsupport.faults import tiny_filesystem
from testsupport.load import Balancer

pytestmark = pytest.mark.slow

VOLUME_BYTES = 16 << 20
FULL_STATUS, FULL_MESSAGE = DATABASE_FAILURE_RESPONSES[DatabaseFailure.STORAGE_FULL]


def integrity(database: Path) -> tuple[str, int]:
    """PRAGMA integrity_check, and the number of projects without their outbox event."""
    with sqlite3.connect(database) as conn:
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        orphans = conn.execute(
            "SELECT count(*) FROM projects p WHERE NOT EXISTS (SELECT 1 FROM outbox_events e "
            "WHERE json_extract(e.payload, '$.data.projectId') = p.id "
            "OR json_extract(e.payload, '$.data.projectId') = lower(substr(p.id, 1, 8) || '-' || "
            "substr(p.id, 9, 4) || '-' || substr(p.id, 13, 4) || '-' || substr(p.id, 17, 4) || '-' || "
            "substr(p.id, 21)))"
        ).fetchone()[0]
    return str(check), int(orphans)


async def test_disk_full_gives_a_clear_error_and_corrupts_nothing(profile: Profile, tmp_path: Path) -> None:
    with tiny_filesystem(VOLUME_BYTES) as volume:
        database = volume.path / "service.db"
        url = f"sqlite+aiosqlite:///{database}"
        async with migrated_stack(url, tmp_path, profile.users) as stack:
            load = start_load(Balancer([stack.api.base_url]), stack.tokens, profile)
            await asyncio.sleep(profile.before_seconds)

            full_at = time.monotonic()
            taken = await asyncio.to_thread(volume.fill)
            await asyncio.sleep(profile.fault_seconds)
            freed_at = time.monotonic()
            volume.free()
            result = await load.finish(profile.after_seconds)
            account = await settle_events(stack.receiver, url, result.acknowledged_writes)
            stored = await stored_project_ids(url)
            alive = stack.healthy() and stack.api.starts == stack.worker.starts == 1
        check, orphans = integrity(database)

    refused = [o for o in result.failed if o.status == FULL_STATUS]
    detected_at = next(
        (o.ended for o in sorted(result.outcomes, key=lambda o: o.ended) if o in refused), None
    )
    recovered_at = result.first(freed_at, ok=True, kinds=("create",))
    lost = sorted(set(result.acknowledged_writes) - stored)
    report(
        Figures(
            "disk full (SQLite on a 16 MiB tmpfs)",
            result.sent,
            len(result.failed),
            len(lost),
            len(account.lost),
            account.duplicated,
            None if detected_at is None else detected_at - full_at,
            None if recovered_at is None else recovered_at - freed_at,
            f"{len(refused)} writes refused with {FULL_STATUS} while full ({taken >> 10} KiB filled), "
            f"reads all 200; integrity_check {check}, {orphans} projects without their event",
        )
    )

    assert refused, "the full disk must be visible to writers (or the fault was not injected)"
    assert {(o.kind, o.status) for o in result.failed} == {("create", FULL_STATUS)}, (
        "only writes fail, clearly"
    )
    assert leaky_5xx(result.outcomes) == []
    assert all(FULL_MESSAGE.encode() in o.body for o in refused)
    assert all(o.status == 200 for o in result.outcomes if o.kind != "create"), "reads keep working"
    assert check == "ok" and orphans == 0, "nothing corrupted, no write without its event"
    assert lost == [] and account.lost == []
    assert recovered_at is not None, "writes must succeed again once space is freed"
    assert alive, "no process died or was restarted"
