"""What the bare baselines share: how they are served, the list query and the page they answer.

The page model is the service's own (``ProjectPage``), imported here and nowhere else in the
benchmark, so the baselines answer the same JSON shape through FastAPI's ``response_model``
(validation and serialisation by pydantic, as a plain FastAPI app would).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping, Sequence
from typing import Any

import uvicorn
from fastapi import FastAPI

from app.projects.presentation.schemas import ProjectPage
from app.settings import Settings

PAGE_MODEL = ProjectPage
# The service's own pool (its defaults), so a baseline holds as many connections as it does.
POOL_SIZE: int = Settings.model_fields["db_pool_size"].default
MAX_OVERFLOW: int = Settings.model_fields["db_max_overflow"].default

# The service's query for a member's list page (projects/infrastructure/repository.py): the
# owner filter, the keyset order, one row beyond the page to tell whether another exists.
LIST_SQL = (
    "SELECT id, name, description, type, status, owner_id, created_at, updated_at FROM projects "
    "WHERE owner_id = {owner} ORDER BY created_at DESC, id DESC LIMIT {fetch}"
)


def page(rows: Sequence[Mapping[Any, Any]], limit: int) -> dict[str, Any]:
    """The page body, before FastAPI validates it; the cursor is built from the last row, as the
    service's is (the same inputs, not its exact encoding)."""
    data = [dict(row) for row in rows[:limit]]
    last = data[-1] if len(rows) > limit else None
    cursor = (
        base64.urlsafe_b64encode(f"{last['created_at'].isoformat()}|{last['id']}".encode()).decode()
        if last
        else None
    )
    return {"data": data, "meta": {"limit": limit, "has_more": last is not None, "next_cursor": cursor}}


def serve(app: FastAPI) -> None:
    """As the service is served: uvicorn, uvloop, httptools, one worker, no access log."""
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(os.environ["PORT"]),
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
    )
