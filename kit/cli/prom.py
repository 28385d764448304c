"""Prometheus and Alertmanager over HTTP (httpx), with one-line errors when unreachable."""

from __future__ import annotations

from typing import Any

import httpx

from kit.cli.errors import UNREACHABLE, KitError


class Prometheus:
    def __init__(self, base_url: str, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def _get(self, path: str, **params: str) -> Any:
        try:
            response = self._client.get(path, params=params)
        except httpx.HTTPError as error:
            raise KitError(f"Prometheus unreachable at {self.base_url}: {error}", UNREACHABLE) from None
        if response.status_code != 200:
            raise KitError(
                f"Prometheus at {self.base_url} answered {response.status_code} for {path}: "
                f"{response.text.strip()[:200]}",
                UNREACHABLE,
            )
        body = response.json()
        if body.get("status") != "success":
            raise KitError(f"Prometheus query failed: {body.get('error', body)}", 1)
        return body["data"]

    def vector(self, query: str) -> list[tuple[dict[str, str], float]]:
        """An instant query's samples as (labels, value)."""
        data = self._get("/api/v1/query", query=query)
        return [(sample["metric"], float(sample["value"][1])) for sample in data.get("result", [])]

    def scalar(self, query: str) -> float | None:
        samples = self.vector(query)
        return samples[0][1] if samples else None

    def alerts(self) -> list[dict[str, Any]]:
        """Alerts in Prometheus's rule evaluation (pending and firing)."""
        return list(self._get("/api/v1/alerts").get("alerts", []))


def alertmanager_alerts(base_url: str, namespace: str, timeout: float) -> list[dict[str, Any]]:
    """Active, unsilenced, uninhibited alerts of a namespace from Alertmanager's v2 API."""
    url = base_url.rstrip("/") + "/api/v2/alerts"
    params = {
        "active": "true",
        "silenced": "false",
        "inhibited": "false",
        "filter": f'namespace="{namespace}"',
    }
    try:
        response = httpx.get(url, params=params, timeout=timeout)
    except httpx.HTTPError as error:
        raise KitError(f"Alertmanager unreachable at {base_url}: {error}", UNREACHABLE) from None
    if response.status_code != 200:
        raise KitError(f"Alertmanager at {base_url} answered {response.status_code}", UNREACHABLE)
    return list(response.json())
