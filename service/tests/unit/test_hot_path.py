"""What the performance work must not change: wire format, routes and OpenAPI, process settings."""

from __future__ import annotations

import gc
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from app.core.pagination import Cursor, Page
from app.core.schemas import ModelJson, ResponseModel, json_response
from app.edge.ratelimit import RateLimitMiddleware
from app.health.router import router as health_router
from app.identity.presentation.router import auth_router, users_router
from app.main import GC_YOUNG_THRESHOLD, create_app, settle_garbage_collector
from app.projects.domain.models import Project, ProjectStatus, ProjectType
from app.projects.presentation.router import _PROJECT_JSON, page_response
from app.projects.presentation.router import router as projects_router
from app.projects.presentation.schemas import PageMeta, ProjectPage, ProjectRead
from service.tests.conftest import make_settings


def _project(created_at: datetime, description: str | None) -> Project:
    return Project(
        uuid.uuid4(),
        "Name «ü»",
        description,
        ProjectType.CLIENT,
        ProjectStatus.ACTIVE,
        uuid.uuid4(),
        created_at,
        created_at,
    )


@pytest.mark.parametrize(
    "created_at",
    [
        datetime(2026, 11, 24, 7, 8, 9, 123456, tzinfo=UTC),
        datetime(2026, 11, 24, 7, 8, 9, tzinfo=UTC),  # no microseconds: no fraction either way
        datetime(2026, 11, 24, 9, 8, 9, 5, tzinfo=timezone(timedelta(hours=2))),
    ],
)
def test_the_fast_list_body_is_byte_for_byte_what_pydantic_writes(created_at: datetime) -> None:
    items = [_project(created_at, None), _project(created_at, 'quotes " and \\ and \n')]
    cursor = Cursor(created_at=created_at, id=items[-1].id)
    for next_cursor in (cursor, None):
        page = Page(items=items, limit=2, next_cursor=next_cursor)
        encoded = cursor.encode() if next_cursor else None
        by_pydantic = ProjectPage(
            data=[ProjectRead.model_validate(p) for p in items],
            meta=PageMeta(limit=2, has_more=page.has_more, next_cursor=encoded),
        ).model_dump_json(by_alias=True)
        fast = page_response(page)
        assert fast.body == by_pydantic.encode()
        assert fast.headers["content-type"] == "application/json"
    assert _PROJECT_JSON.many(items[:1]) == [ProjectRead.model_validate(items[0]).model_dump(by_alias=True)]


def test_uuid_subclasses_are_written_as_uuids_and_unknown_types_refused() -> None:
    class DriverUuid(uuid.UUID):  # like asyncpg's, which orjson does not know
        pass

    value = DriverUuid("12345678-1234-5678-1234-567812345678")
    assert json_response({"id": value}).body == b'{"id":"12345678-1234-5678-1234-567812345678"}'
    with pytest.raises(TypeError, match="not JSON serializable"):
        json_response({"when": object()})


def test_model_json_refuses_models_pydantic_must_serialize() -> None:
    class Nested(ResponseModel):
        meta: PageMeta

    class Decimalish(BaseModel):
        amount: float | complex

    with pytest.raises(TypeError, match=r"Nested: fields \['meta'\]"):
        ModelJson(Nested)
    with pytest.raises(TypeError, match="amount"):
        ModelJson(Decimalish)


def test_routes_added_directly_match_what_include_router_documents(sqlite_url: str) -> None:
    app = create_app(make_settings(sqlite_url))
    included = FastAPI(title=app.title, version=app.version, description=app.description)
    for router in (health_router, projects_router, auth_router, users_router):
        included.include_router(router)
    ours, theirs = app.openapi(), included.openapi()
    assert ours["paths"] == theirs["paths"]
    assert ours["components"] == theirs["components"]
    assert app.url_path_for("get_project", project_id="p1") == "/api/v1/projects/p1"
    names = {getattr(route, "name", None) for route in app.routes}
    assert {"list_projects", "get_project", "live", "ready"} <= names


def test_rate_limits_wrap_the_routes_innermost(sqlite_url: str) -> None:
    app = create_app(make_settings(sqlite_url))
    assert app.user_middleware[-1].cls is RateLimitMiddleware  # runs after host, CORS, body checks


@pytest.fixture
def gc_state() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_startup_objects_leave_the_collectors_sight(gc_state: None) -> None:
    gc.unfreeze()
    _, middle, old = gc.get_threshold()
    settle_garbage_collector()
    assert gc.get_freeze_count() > 10_000  # modules, app, pools: everything alive now
    assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, middle, old)
