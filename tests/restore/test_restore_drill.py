"""The restore drill on small data: a real backup, a real restore, the real service on the copy."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from app.migrate import upgrade
from kit import restore_drill
from testsupport.database_roles import create_database_with_roles
from testsupport.servers import PostgresServer


def test_small_drill_restores_every_row_and_serves(tmp_path: Path) -> None:
    report = restore_drill.run_drill(500, tmp_path)
    assert report.row_counts["projects"] == 500
    assert report.row_counts["outbox_events"] == 50
    assert report.row_counts["idempotency_keys"] == report.row_counts["users"] > 0
    assert report.row_counts["alembic_version"] == 1
    assert report.projects_listed > 0
    assert 0 < report.restore_seconds < report.rto_seconds
    assert 0 <= report.rpo_seconds < 60
    assert report.backup_bytes > 0
    printed = "\n".join(report.lines())
    assert f"RTO {report.rto_seconds:.1f} s" in printed and "RPO" in printed


def test_a_truncated_backup_fails_with_one_line(postgres: PostgresServer, tmp_path: Path) -> None:
    urls = create_database_with_roles(postgres, f"drill_{uuid.uuid4().hex[:8]}")
    upgrade(restore_drill._settings(urls))
    backup = restore_drill.take_backup(postgres, urls.database, tmp_path / "full.dump")
    truncated = tmp_path / "truncated.dump"
    truncated.write_bytes(backup.path.read_bytes()[: backup.size_bytes // 2])
    try:
        with pytest.raises(restore_drill.DrillError, match=r"^pg_restore failed: ") as error:
            restore_drill.restore_backup(postgres, truncated)
        assert "\n" not in str(error.value)
    finally:
        postgres.psql(f'DROP DATABASE IF EXISTS "{restore_drill.DATABASE}" WITH (FORCE)')


def test_cli_refuses_nonsense_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert restore_drill.main(["--projects", "0"]) == 1
    assert capsys.readouterr().err == "restore drill failed: --projects must be at least 1\n"
