"""Baseline 2: bare FastAPI + SQLAlchemy async running the service's list query (owner filter,
keyset order, limit+1) on the same seeded table, with the service's pool size. No auth, no
middleware, no pagination cursor: the floor of what the list endpoint costs."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

engine = create_async_engine(
    os.environ.get("DATABASE_URL", "postgresql+asyncpg://localhost/loadtest"), pool_size=10, max_overflow=5
)
LIST = text(
    "SELECT id, name, description, type, status, owner_id, created_at, updated_at FROM projects "
    "WHERE owner_id = :owner ORDER BY created_at DESC, id DESC LIMIT :limit"
)


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield
    await engine.dispose()


app = FastAPI(lifespan=lifespan)


@app.get("/projects")
async def list_projects(owner_id: uuid.UUID, limit: int = 20) -> dict[str, Any]:
    async with engine.connect() as conn:
        rows = (await conn.execute(LIST, {"owner": owner_id, "limit": limit + 1})).mappings().all()
    return {"data": [dict(r) for r in rows[:limit]], "meta": {"limit": limit, "hasMore": len(rows) > limit}}


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(os.environ["PORT"]),
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
    )
