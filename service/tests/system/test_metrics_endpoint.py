"""The /metrics of a real server process (default registry: process metrics included) passes promtool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from service.tests.system.service_process import service_process

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def test_real_server_metrics_pass_promtool(sqlite_url: str, tmp_path: Path) -> None:
    with service_process(sqlite_url, tmp_path) as server:
        for _ in range(3):
            httpx.get(f"{server.base_url}/api/v1/projects")
        text = httpx.get(f"{server.base_url}/metrics").text
    check = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    names = {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}
    assert {
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "http_requests_in_progress",
        "db_pool_connections_in_use",
        "db_pool_connections_max",
        "service_build_info",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    } <= names
