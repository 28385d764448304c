"""The speed measures kept outside the read model must not change what the service does."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.composition import create_app
from app.identity.presentation.router import auth_router, users_router
from app.main import GC_YOUNG_THRESHOLD, settle_garbage_collector
from app.projects.presentation.router import router as projects_router
from app.web.health import LivenessMiddleware
from app.web.health import router as health_router
from service.tests.builders import make_settings


def test_routes_added_as_the_apps_own_document_what_include_router_documents(sqlite_url: str) -> None:
    app = create_app(make_settings(sqlite_url))
    included = FastAPI(title=app.title, version=app.version, description=app.description)
    for router in (health_router, projects_router, auth_router, users_router):
        included.include_router(router)
    ours, theirs = app.openapi(), included.openapi()
    assert ours["paths"] == theirs["paths"]
    assert ours["components"] == theirs["components"]
    assert app.url_path_for("get_project", project_id="p1") == "/api/v1/projects/p1"


@pytest.fixture
def gc_state() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_after_startup_young_collections_are_rarer_and_startup_objects_frozen(gc_state: None) -> None:
    gc.unfreeze()
    _, middle, old = gc.get_threshold()
    settle_garbage_collector()
    assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, middle, old)
    assert gc.get_freeze_count() > 0  # what was alive at startup is out of the collector's sight


async def test_liveness_is_answered_before_the_app_and_other_methods_reach_the_router() -> None:
    reached: list[tuple[str, str]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        reached.append((scope["method"], scope["path"]))
        await Response(status_code=405)(scope, receive, send)

    transport = httpx.ASGITransport(app=LivenessMiddleware(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        live = await http.get("/health/live")
        posted = await http.post("/health/live")
    assert (live.status_code, live.content) == (200, b'{"status":"ok"}')
    assert live.headers["content-type"] == "application/json"
    assert posted.status_code == 405
    assert reached == [("POST", "/health/live")]  # the GET never reached the app
