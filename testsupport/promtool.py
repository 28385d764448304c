"""promtool, the Prometheus project's own checker, for the tests: a /metrics exposition and rule
files are valid when promtool says so, not when our parser does.

promtool comes with the Debian package prometheus (`make system-deps`).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

# The service's metric names the alerts, recording rules and dashboards read (alerts/slo.yaml,
# kit/dashboards/): an exposition without one of them leaves a rule or a panel empty.
CONTRACTED_METRICS = frozenset(
    {
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "http_requests_in_progress",
        "db_pool_connections_in_use",
        "db_pool_connections_max",
        "service_build_info",
    }
)

PROMTOOL_TIMEOUT_SECONDS = 60

Samples = dict[str, list[tuple[dict[str, str], float]]]


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool comes with the Debian package prometheus (make system-deps)"
    return path


def samples(exposition: str) -> Samples:
    """Sample name -> [(labels, value)] of a text exposition."""
    found: Samples = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def check_metrics(exposition: str, required: frozenset[str] = CONTRACTED_METRICS) -> Samples:
    """Assert that `promtool check metrics` accepts the exposition and every required sample name
    is in it; returns its samples for the caller's own assertions."""
    result = subprocess.run(
        [promtool(), "check", "metrics"],
        input=exposition,
        capture_output=True,
        text=True,
        check=False,
        timeout=PROMTOOL_TIMEOUT_SECONDS,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    found = samples(exposition)
    missing = sorted(required - set(found))
    assert not missing, f"the exposition lacks {missing}"
    return found


def check_rules(path: Path) -> subprocess.CompletedProcess[str]:
    """`promtool check rules` on one rules file (the caller asserts on the outcome)."""
    return subprocess.run(
        [promtool(), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=PROMTOOL_TIMEOUT_SECONDS,
    )
