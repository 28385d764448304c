"""Fixtures of the fault-under-load scenarios (helpers in tests/chaos/harness.py); the figures
table is printed at the end of the run.

Starting a Python process costs seconds of CPU (imports), so the scenarios whose fault leaves the
stack whole afterwards share one: PostgreSQL (the session's), Redis, two API processes with the
shared rate limits on, the worker and the receiver. Each scenario checks that it left the stack
healthy and the receiver answering. The PostgreSQL kill and the full disk get stacks of their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from app.migrate import upgrade
from app.settings import Settings
from tests.chaos.harness import (
    SHARED_API_SETTINGS,
    Profile,
    Stack,
    chaos_stack,
    profile_from_environment,
    summary_lines,
)
from testsupport.load import api_users
from testsupport.servers import PostgresServer, RedisServer, redis_server


@pytest.fixture(scope="session")
def profile() -> Profile:
    try:
        return profile_from_environment()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.fixture(scope="session")
def chaos_redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture(scope="session")
def _shared_stack(
    postgres: PostgresServer,
    chaos_redis: RedisServer,
    profile: Profile,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    postgres.psql('CREATE DATABASE "chaos_shared"')
    url = postgres.url("chaos_shared")
    upgrade(Settings(database_url=url))
    log_dir = tmp_path_factory.mktemp("chaos-shared")
    with chaos_stack(
        url, log_dir, apis=2, api={**SHARED_API_SETTINGS, "REDIS_URL": chaos_redis.url}
    ) as stack:
        stack.tokens = asyncio.run(api_users(stack.api.base_url, profile.users))
        yield stack


@pytest.fixture
def shared_stack(_shared_stack: Stack, chaos_redis: RedisServer) -> Iterator[Stack]:
    """The shared stack, with a receiver that answers at once; it must be whole again afterwards."""
    receiver = _shared_stack.receiver
    receiver.delay, receiver.status = 0.0, 200
    yield _shared_stack
    assert _shared_stack.healthy(), "a scenario must leave the shared stack running"
    assert chaos_redis.process.poll() is None, "a scenario must leave Redis running"
    receiver.delay, receiver.status = 0.0, 200


def pytest_terminal_summary(terminalreporter: Any) -> None:
    lines = summary_lines()
    if lines:
        terminalreporter.section(f"faults under load ({profile_from_environment().name} profile)")
        for line in lines:
            terminalreporter.write_line(line)
