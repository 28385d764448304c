"""/metrics: valid exposition (promtool), the contracted names, pool and build gauges, bounded labels."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import StaticPool

from app.observability.metrics import DbPoolCollector
from app.settings import Settings
from service.tests.builders import make_settings
from testsupport.promtool import check_metrics, samples


@pytest.fixture
def settings(postgres_url: str) -> Settings:
    return make_settings(postgres_url, db_pool_size=4, db_max_overflow=2, version="9.8.7")


async def test_exposition_passes_promtool_and_has_the_contracted_metrics(client: httpx.AsyncClient) -> None:
    await client.get("/api/v1/projects")
    await client.get("/health/ready")
    found = check_metrics((await client.get("/metrics")).text)
    assert found["service_build_info"] == [({"version": "9.8.7", "environment": "test"}, 1.0)]
    assert found["db_pool_connections_max"] == [({}, 6.0)]  # pool size 4 + overflow 2
    assert found["db_pool_connections_in_use"] == [({}, 0.0)]  # nothing holds a connection between requests
    unauthorized = {"method": "GET", "route": "/api/v1/projects", "status": "401"}
    assert (unauthorized, 1.0) in found["http_requests_total"]


async def test_pool_gauge_counts_connections_held_right_now(app: FastAPI, client: httpx.AsyncClient) -> None:
    engine = app.state.container.database.engine
    async with engine.connect(), engine.connect():
        held = samples((await client.get("/metrics")).text)["db_pool_connections_in_use"]
    assert held == [({}, 2.0)]


async def test_unknown_methods_collapse_into_one_label(client: httpx.AsyncClient) -> None:
    for method in ("PROPFIND", "BREW", "X-CUSTOM"):
        await client.request(method, "/api/v1/projects")
    found = samples((await client.get("/metrics")).text)
    methods = {labels["method"] for labels, _ in found["http_requests_total"]}
    assert methods == {"other"}  # (the scrape itself is counted after it answers)
    assert {labels["method"] for labels, _ in found["http_requests_in_progress"]} == {"GET", "other"}


async def test_pools_without_the_queue_api_report_nothing() -> None:
    engine = create_async_engine("sqlite+aiosqlite:///:memory:", poolclass=StaticPool)
    collector = DbPoolCollector(engine)
    assert list(collector.collect()) == []
    await engine.dispose()
    registry = CollectorRegistry()
    registry.register(collector)
    assert [metric.name for metric in registry.collect()] == []
