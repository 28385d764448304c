from __future__ import annotations

import httpx
import pytest

from app.settings import Settings
from service.tests.builders import make_settings


@pytest.fixture
def settings(sqlite_url: str) -> Settings:
    return make_settings(sqlite_url, fault_injection_error_ratio=1.0)


async def test_fault_injection_fails_api_routes_but_not_probes(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/projects")
    assert response.status_code == 500
    assert response.json()["message"] == "Injected fault"
    assert (await client.get("/health/ready")).status_code == 200
    metrics = (await client.get("/metrics")).text
    assert 'http_requests_total{method="GET",route="/api/v1/projects",status="500"} 1.0' in metrics
