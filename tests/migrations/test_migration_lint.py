"""kit.migration_lint: drops and renames pass only as the marked contract step of expand/contract."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kit import migration_lint

HEADER = """
revision = "{rev}"
down_revision = {down!r}
{marker}
from alembic import op
import sqlalchemy as sa


def upgrade() -> None:
{body}


def downgrade() -> None:
    op.drop_table("always_allowed_in_downgrade")
"""


def write(directory: Path, rev: str, down: str | None, body: str, contract_of: str | None = None) -> Path:
    marker = f'contract_of = "{contract_of}"' if contract_of else ""
    path = directory / f"{rev}_step.py"
    path.write_text(HEADER.format(rev=rev, down=down, marker=marker, body=textwrap.indent(body, "    ")))
    return path


@pytest.fixture
def versions(tmp_path: Path) -> Path:
    write(tmp_path, "0001", None, 'op.create_table("users", sa.Column("id", sa.Integer))')
    return tmp_path


def messages(versions: Path) -> list[str]:
    return [str(f) for f in migration_lint.lint_directory(versions)]


def test_the_repository_migrations_are_clean() -> None:
    assert migration_lint.lint_directory(migration_lint.VERSIONS) == []
    assert migration_lint.main([]) == 0


@pytest.mark.parametrize(
    ("body", "what"),
    [
        ('op.drop_column("users", "legacy_name")', "drop_column users.legacy_name"),
        ('op.drop_column(table_name="users", column_name="legacy_name")', "drop_column users.legacy_name"),
        ('op.drop_table("old_reports")', "drop_table old_reports"),
        ('op.rename_table("old_reports", "reports")', "rename_table old_reports"),
        ('op.alter_column("users", "name", new_column_name="full_name")', "rename_column users.name"),
        (
            'with op.batch_alter_table("users") as batch_op:\n    batch_op.drop_column("legacy_name")',
            "drop_column users.legacy_name",
        ),
        ('op.execute("ALTER TABLE users DROP COLUMN legacy_name")', "raw SQL drop/rename"),
        ('op.execute(sa.text("alter table users rename column name to full_name"))', "raw SQL drop/rename"),
    ],
)
def test_a_destructive_step_is_flagged(versions: Path, body: str, what: str) -> None:
    write(versions, "0002", "0001", body)
    found = messages(versions)
    assert len(found) == 1
    assert found[0].startswith("0002_step.py:") and what in found[0] and "contract_of" in found[0]


def test_expanding_steps_pass(versions: Path) -> None:
    body = (
        'op.add_column("users", sa.Column("time_zone", sa.String(64), nullable=True))\n'
        'op.create_index("ix_users_tz", "users", ["time_zone"])\n'
        "op.execute(\"UPDATE users SET time_zone = 'UTC'\")"
    )
    write(versions, "0002", "0001", body)
    assert messages(versions) == []


def test_a_marked_contract_step_passes_when_the_models_no_longer_use_the_name(versions: Path) -> None:
    write(versions, "0002", "0001", 'op.add_column("users", sa.Column("full_name", sa.String(100)))')
    write(versions, "0003", "0002", 'op.drop_column("users", "legacy_nickname")', contract_of="0002")
    assert messages(versions) == []


def test_a_contract_step_may_not_drop_what_the_models_still_read(versions: Path) -> None:
    write(versions, "0002", "0001", 'op.add_column("users", sa.Column("full_name", sa.String(100)))')
    write(versions, "0003", "0002", 'op.drop_column("users", "email")', contract_of="0002")
    assert messages(versions) == [
        "0003_step.py:10: drop_column users.email: the models of this release still use it"
    ]


def test_the_marker_must_name_an_earlier_revision(versions: Path) -> None:
    write(versions, "0002", "0001", 'op.drop_column("users", "legacy")', contract_of="0009")
    write(versions, "0003", "0002", 'op.drop_column("users", "legacy2")', contract_of="0003")
    found = messages(versions)
    assert found == [
        "0002_step.py:1: contract_of='0009': no such revision",
        "0003_step.py:1: contract_of='0003' is not an earlier revision (expand first)",
    ]


def test_cli_exits_1_with_one_line_per_finding(versions: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(versions, "0002", "0001", 'op.drop_table("a")\nop.drop_table("b")')
    assert migration_lint.main(["--versions", str(versions)]) == 1
    assert len(capsys.readouterr().out.strip().splitlines()) == 2


def test_cli_rejects_a_missing_directory_and_a_broken_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert migration_lint.main(["--versions", str(tmp_path / "nope")]) == 2
    (tmp_path / "0001_bad.py").write_text("down_revision = None\n")
    assert migration_lint.main(["--versions", str(tmp_path)]) == 2
    assert "no `revision" in capsys.readouterr().err
