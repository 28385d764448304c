"""Baseline: bare FastAPI + SQLAlchemy async running the service's list query on the same seeded
table, with the service's pool size, answering the service's page model. No auth, no
middleware: what the list endpoint costs through SQLAlchemy Core and plain FastAPI."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from loadtests.bench.bare import LIST_SQL, MAX_OVERFLOW, PAGE_MODEL, POOL_SIZE, page, serve

engine = create_async_engine(
    os.environ.get("DATABASE_URL", "postgresql+asyncpg://localhost/loadtest"),
    pool_size=POOL_SIZE,
    max_overflow=MAX_OVERFLOW,
)
LIST = text(LIST_SQL.format(owner=":owner", fetch=":fetch"))


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield
    await engine.dispose()


app = FastAPI(lifespan=lifespan)


@app.get("/projects", response_model=PAGE_MODEL)
async def list_projects(owner_id: uuid.UUID, limit: int = 20) -> dict[str, Any]:
    async with engine.connect() as conn:
        rows = (await conn.execute(LIST, {"owner": owner_id, "fetch": limit + 1})).mappings().all()
    return page(rows, limit)


if __name__ == "__main__":
    serve(app)
