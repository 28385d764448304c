"""Baseline: bare FastAPI + a raw asyncpg pool running the service's list query on the same
seeded table, with the service's pool size, answering the service's page model through
``response_model``. No auth, no middleware, no ORM: the floor of what the list endpoint costs
in idiomatic FastAPI."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import FastAPI, Request

from loadtests.bench.bare import LIST_SQL, MAX_OVERFLOW, PAGE_MODEL, POOL_SIZE, page, serve
from loadtests.seed import asyncpg_dsn

LIST = LIST_SQL.format(owner="$1", fetch="$2")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    dsn = asyncpg_dsn(os.environ.get("DATABASE_URL", "postgresql+asyncpg://localhost/loadtest"))
    async with asyncpg.create_pool(dsn, min_size=POOL_SIZE, max_size=POOL_SIZE + MAX_OVERFLOW) as pool:
        app.state.pool = pool
        yield


app = FastAPI(lifespan=lifespan)


@app.get("/projects", response_model=PAGE_MODEL)
async def list_projects(request: Request, owner_id: uuid.UUID, limit: int = 20) -> dict[str, Any]:
    pool: asyncpg.Pool = request.app.state.pool
    return page(await pool.fetch(LIST, owner_id, limit + 1), limit)


if __name__ == "__main__":
    serve(app)
