"""The database's fair checkout queue: never more units of work than the pool holds, no leaks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from app.outbox.tables import write_events
from app.persistence.database import Database
from app.persistence.unit_of_work import SqlUnitOfWork
from service.tests.builders import make_settings


@pytest.fixture
async def database(postgres_url: str) -> AsyncIterator[Database]:
    database = Database(make_settings(postgres_url, db_pool_size=2, db_max_overflow=1))
    yield database
    await database.dispose()


async def test_the_checkout_queue_admits_the_pool_size_and_never_leaks(database: Database) -> None:
    for _ in range(5):  # more failures than permits: each one must give its permit back
        with pytest.raises(ZeroDivisionError):
            async with SqlUnitOfWork(database, write_events):
                raise ZeroDivisionError
    inside, most_inside = 0, 0

    async def one() -> None:
        nonlocal inside, most_inside
        async with SqlUnitOfWork(database, write_events) as uow:
            inside += 1
            most_inside = max(most_inside, inside)
            await uow.connection.execute(text("SELECT pg_sleep(0.02)"))
            inside -= 1

    await asyncio.wait_for(asyncio.gather(*(one() for _ in range(12))), timeout=10)
    assert most_inside == 3  # pool size 2 + overflow 1, and the rest queued at the gate
    # Every permit is back: three connections can be held at once again, without waiting.
    async with asyncio.timeout(2):
        async with database.connect(), database.connect(), database.connect():
            pass


async def test_a_unit_of_work_is_one_transaction(database: Database) -> None:
    async with SqlUnitOfWork(database, write_events) as uow:
        first = (await uow.connection.execute(text("SELECT transaction_timestamp()"))).scalar_one()
        await asyncio.sleep(0.01)
        second = (await uow.connection.execute(text("SELECT transaction_timestamp()"))).scalar_one()
    assert first == second
