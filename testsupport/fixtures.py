"""Pytest fixtures over testsupport.servers, shared by every suite (registered in conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from testsupport.servers import PostgresServer, RedisServer, postgres_server, redis_server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL 15 cluster per test session, on a free loopback port."""
    with postgres_server() as server:
        yield server


@pytest.fixture
def postgres_database(postgres: PostgresServer) -> Iterator[str]:
    """A fresh, empty database per test; yields its SQLAlchemy asyncpg URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    postgres.psql(f'CREATE DATABASE "{name}"')
    yield postgres.url(name)
    postgres.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server
