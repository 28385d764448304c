"""The SLO spec loader: the committed spec is valid, bad specs fail with one clear line."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from app.main import create_app
from app.observability.metrics import LATENCY_BUCKETS
from app.settings import Settings
from kit import environments, slo
from kit.paths import ROOT

KNOWN_ENVIRONMENTS = list(environments.load().environments)


@pytest.fixture
def raw_spec() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(slo.SPEC_FILE.read_text()))


def test_committed_spec_loads_with_every_configured_environment() -> None:
    spec = slo.load()
    assert spec.environments == KNOWN_ENVIRONMENTS
    prod = spec.objectives("prod")
    assert prod.availability_objective == 0.999
    assert spec.objectives("dev").availability_objective == 0.99  # override applied
    assert spec.objectives("ci").classes["read"].p99_ms == prod.classes["read"].p99_ms  # inherited


def test_histogram_buckets_are_the_service_buckets() -> None:
    # A latency threshold must be a bucket bound of the real histogram, or the SLI is wrong.
    assert slo.load().histogram_buckets_seconds == LATENCY_BUCKETS


def test_endpoint_classes_cover_exactly_the_service_routes() -> None:
    app = create_app(Settings(environment="test", jwt_secret="x" * 40), registry=CollectorRegistry())
    served = {
        (method.upper(), path) for path, operations in app.openapi()["paths"].items() for method in operations
    }
    classified = {endpoint for c in slo.load().endpoint_classes.values() for endpoint in c.endpoints}
    assert served - classified == set(), "endpoints without an endpoint class in alerts/slo.yaml"
    assert classified - served == set(), "endpoint classes list endpoints the service does not serve"


def test_load_test_targets_carry_the_error_budget_and_throughput() -> None:
    spec = slo.load()
    document = slo.load_targets_document(spec)
    ci = document["environments"]["ci"]
    assert ci["classes"]["read"]["max_error_ratio"] == pytest.approx(
        1 - spec.objectives("ci").availability_objective
    )
    assert ci["min_throughput_rps"] == pytest.approx(
        sum(c["min_throughput_rps"] for c in ci["classes"].values())
    )
    assert document["routes"]["POST /api/v1/auth/login"] == "auth"
    assert set(document["environments"]) == set(KNOWN_ENVIRONMENTS)


def _set(raw: dict[str, Any], dotted: str, value: object) -> None:
    *parents, last = dotted.split(".")
    node: Any = raw
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


@pytest.mark.parametrize(
    ("dotted", "value", "message"),
    [
        (
            "defaults.availability_objective",
            1.0,
            "defaults.availability_objective: Input should be less than 1",
        ),
        (
            "defaults.availability_objective",
            0,
            "defaults.availability_objective: Input should be greater than 0",
        ),
        ("defaults.latency_objective", "99%", "defaults.latency_objective: expected a number"),
        ("environments.dev.availability_objective", 1.5, "environments.dev.availability_objective"),
        ("burn_rate_windows.0.long", "1x", "burn_rate_windows[0].long: '1x' is not a duration"),
        ("burn_rate_windows.0.short", "2h", "burn_rate_windows[0]: short window 2h must be shorter"),
        ("burn_rate_windows.0.severity", "page", "burn_rate_windows[0].severity: Input should be 'critical'"),
        ("period", "0d", "period: '0d' is not a duration"),
        ("endpoint_classes.read.latency_threshold_ms", 200.5, "is not a histogram bucket bound"),
        ("endpoint_classes.read.endpoints.0", "FETCH /api/v1/projects", "expected 'METHOD /route/template'"),
        ("endpoint_classes.auth.endpoints.0", "POST /api/v1/projects", "already in class write"),
        (
            "environments.qa",
            {"availability_objective": 0.9},
            "qa not in config/environments.yaml",
        ),
        (
            "environments.ci.classes.search",
            {"p95_ms": 1},
            "unknown endpoint class(es) search",
        ),
        (
            "environments.ci.classes.read.p99_ms",
            10,
            "ci.classes.read: p99_ms (10) is below p95_ms",
        ),
        ("thresholds.high_5xx_ratio", 5, "thresholds.high_5xx_ratio: Input should be less than 1"),
        ("service.alert_prefix", "reference-service", "service.alert_prefix: String should match pattern"),
        # Unknown keys are refused at every level (extra="forbid"), not ignored.
        ("burn_rate_windows.0.page", True, "burn_rate_windows[0]: unknown key(s) page"),
        (
            "environments.dev.availabilty_objective",
            0.99,
            "environments.dev: unknown key(s) availabilty_objective",
        ),
        (
            "endpoint_classes.read.in_slo",
            "yes",
            "endpoint_classes.read.in_slo: Input should be a valid boolean",
        ),
        ("defaults.low_traffic_min_rps", True, "defaults.low_traffic_min_rps: expected a number, got True"),
        # Impossible combinations, named by the key that makes them impossible.
        (
            "environments.dev.availability_objective",
            0.9,
            "environments.dev.availability_objective: 0.9 leaves a budget of 0.1, so the 14.4x burn-rate "
            "alert would need an error ratio of 1.44 (>= 1) and could never fire",
        ),
        ("burn_rate_windows.3.long", "40d", "burn_rate_windows[3].long: 40d is longer than the period 30d"),
        (
            "thresholds.certificate_expiry_critical_days",
            20,
            "thresholds.certificate_expiry_critical_days: must be below certificate_expiry_days",
        ),
        (
            "long_window_rollups.interval",
            "1d",
            "long_window_rollups.interval: must be shorter than from_window",
        ),
        ("long_window_rollups.interval", "2x", "long_window_rollups.interval: '2x' is not a duration"),
        ("version", 2, "version: only version 1 is understood, got 2"),
        ("alerting_environment", "production", "alerting_environment: 'production' not in"),
        ("selectors.extra", "x", "selectors: unknown key(s) extra"),
    ],
)
def test_bad_spec_is_refused_naming_the_key(
    raw_spec: dict[str, Any], dotted: str, value: object, message: str
) -> None:
    _set(raw_spec, dotted, value)
    with pytest.raises(slo.SpecError) as error:
        slo.parse(raw_spec, KNOWN_ENVIRONMENTS)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_several_problems_are_reported_on_one_line(raw_spec: dict[str, Any]) -> None:
    del raw_spec["defaults"]["synthetic_objective"]
    raw_spec["thresholds"]["surprise"] = 1
    with pytest.raises(slo.SpecError) as error:
        slo.parse(raw_spec, KNOWN_ENVIRONMENTS)
    assert str(error.value) == (
        "thresholds: unknown key(s) surprise; defaults: missing key(s) synthetic_objective"
    )


def test_environment_overrides_inherit_the_rest(raw_spec: dict[str, Any]) -> None:
    spec = slo.parse(raw_spec, KNOWN_ENVIRONMENTS)
    dev, prod = spec.objectives("dev"), spec.objectives("prod")
    assert (dev.availability_objective, dev.latency_objective, dev.synthetic_objective) == (0.99, 0.95, 0.98)
    assert dev.low_traffic_min_rps == prod.low_traffic_min_rps
    assert dev.classes["read"].p95_ms == prod.classes["read"].p95_ms
    assert spec.rollups.from_seconds == 86400 and spec.rollups.interval_seconds == 150


def test_missing_key_is_named(raw_spec: dict[str, Any]) -> None:
    del raw_spec["defaults"]["low_traffic_min_rps"]
    with pytest.raises(slo.SpecError, match=r"^defaults: missing key\(s\) low_traffic_min_rps$"):
        slo.parse(raw_spec, KNOWN_ENVIRONMENTS)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("defaults: [unclosed", "not valid YAML"),
        ("version: 1\n", "slo.yaml: missing key(s)"),
        ("- just\n- a list\n", "slo.yaml: expected a mapping, got list"),
    ],
)
def test_cli_reports_a_bad_spec_in_one_line_and_exits_2(tmp_path: Path, content: str, message: str) -> None:
    bad = tmp_path / "slo.yaml"
    bad.write_text(content)
    result = subprocess.run(
        [sys.executable, "-m", "kit.generate", "--spec", str(bad), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_refuses_an_unknown_environment(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kit.generate", "--environment", "qa", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: unknown environment 'qa' (known: dev, staging, prod, preview, ci)"
    assert list(tmp_path.iterdir()) == []
