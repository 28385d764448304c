"""Read-only units of work (no transaction on PostgreSQL) and the fair checkout queue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.database import checkout_gate, create_engine
from app.core.sql_unit_of_work import SqlUnitOfWork
from service.tests.conftest import make_settings


@pytest.fixture
async def engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(make_settings(postgres_url, db_pool_size=2, db_max_overflow=1))
    yield engine
    await engine.dispose()


async def _transaction_started_at(uow: SqlUnitOfWork) -> object:
    await asyncio.sleep(0.01)  # the clock must move between the two statements
    return (await uow.connection.execute(text("SELECT transaction_timestamp()"))).scalar_one()


async def test_a_read_only_unit_of_work_runs_each_statement_on_its_own(engine: AsyncEngine) -> None:
    async with SqlUnitOfWork(engine, read_only=True) as uow:
        first, second = await _transaction_started_at(uow), await _transaction_started_at(uow)
    assert first != second  # autocommit: no BEGIN/ROLLBACK round trips around the read
    async with SqlUnitOfWork(engine) as uow:
        first, second = await _transaction_started_at(uow), await _transaction_started_at(uow)
    assert first == second  # the default still runs in one transaction
    async with SqlUnitOfWork(engine) as uow:  # the pooled connection is back to transactions
        first, second = await _transaction_started_at(uow), await _transaction_started_at(uow)
    assert first == second


async def test_a_read_only_unit_of_work_refuses_to_commit(engine: AsyncEngine) -> None:
    async with SqlUnitOfWork(engine, read_only=True) as uow:
        with pytest.raises(RuntimeError, match="read-only"):
            await uow.commit()


async def test_the_checkout_queue_admits_the_pool_size_and_never_leaks(engine: AsyncEngine) -> None:
    gate = checkout_gate(engine)
    assert gate is not None
    for _ in range(5):  # more failures than permits: each one must give its permit back
        with pytest.raises(ZeroDivisionError):
            async with SqlUnitOfWork(engine, read_only=True):
                raise ZeroDivisionError
    inside, most_inside = 0, 0

    async def one() -> None:
        nonlocal inside, most_inside
        async with SqlUnitOfWork(engine, read_only=True) as uow:
            inside += 1
            most_inside = max(most_inside, inside)
            await uow.connection.execute(text("SELECT pg_sleep(0.02)"))
            inside -= 1

    await asyncio.wait_for(asyncio.gather(*(one() for _ in range(12))), timeout=10)
    assert most_inside == 3  # pool size 2 + overflow 1, and the rest queued at the gate
    assert not gate.locked()
