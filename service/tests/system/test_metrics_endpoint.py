"""The /metrics of a real server process (default registry: process metrics included) passes promtool."""

from __future__ import annotations

from pathlib import Path

import httpx

from service.tests.system.service_process import service_process
from testsupport.promtool import CONTRACTED_METRICS, check_metrics


def test_real_server_metrics_pass_promtool(sqlite_url: str, tmp_path: Path) -> None:
    with service_process(sqlite_url, tmp_path) as server:
        for _ in range(3):
            httpx.get(f"{server.base_url}/api/v1/projects")
        text = httpx.get(f"{server.base_url}/metrics").text
    # The default registry adds the process metrics the saturation board reads.
    check_metrics(text, CONTRACTED_METRICS | {"process_cpu_seconds_total", "process_resident_memory_bytes"})
