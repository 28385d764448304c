"""Apply database migrations (`python -m app.migrate`): Alembic upgrade to head.

Idempotent and safe to re-run: Alembic records the applied revision, and on
PostgreSQL an advisory lock serialises concurrent runs (several pods starting).
"""

from __future__ import annotations

import sys
from pathlib import Path

from alembic import command
from alembic.config import Config

from app.core.settings import Settings, get_settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s")
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    command.upgrade(alembic_config(settings.database_url), revision)


def downgrade(settings: Settings, revision: str) -> None:
    command.downgrade(alembic_config(settings.database_url), revision)


def run() -> None:
    try:
        upgrade(get_settings())
    except Exception as exc:  # a one-line reason and a non-zero exit, not a stack trace
        print(f"migration failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    print("migrations applied (head)")


if __name__ == "__main__":
    run()
