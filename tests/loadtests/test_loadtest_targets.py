"""The reader of the SLO-generated targets: the real file, what kit/slo.py writes, broken files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kit import environments, slo
from loadtests import shapes
from loadtests.targets import TARGETS_FILE, TargetsError, load, parse, parse_document
from tests.loadtests.helpers import targets_document
from testsupport.documents import with_changes


@pytest.mark.parametrize("environment", sorted(environments.load().environments))
def test_every_environment_has_targets_for_every_journey_route(environment: str) -> None:
    targets = load(environment)
    journey_routes = {r for task in shapes.TASK_REQUESTS.values() for r in task} | {
        "GET /health/live",
        "GET /health/ready",
    }
    for route in sorted(journey_routes):
        method, template = route.split(" ", 1)
        class_name, target = targets.target_for(method, template)
        assert class_name is not None, f"{route} has no SLO class in {TARGETS_FILE}"
        assert target is not None and target.latency_threshold_ms > 0
    assert 0 < targets.availability_objective < 1 and 0 < targets.latency_objective < 1


def test_the_committed_file_is_what_the_slo_spec_generates_and_the_schema_reads_it() -> None:
    document = slo.load_targets_document(slo.load())
    assert json.loads(TARGETS_FILE.read_text()) == document, "stale: run make generate"
    parsed = parse_document(document, "kit/slo.py")
    spec = slo.load()
    critical = {w.burn_rate for w in spec.burn_rate_windows if w.severity == "critical"}
    assert set(parsed.page_burn_rates) == critical
    ci = load("ci")
    objectives = spec.objectives("ci")
    assert ci.availability_objective == objectives.availability_objective
    assert ci.latency_objective == objectives.latency_objective
    assert ci.latency_bounds_ms == tuple(
        sorted({float(c.latency_threshold_ms) for c in spec.endpoint_classes.values()})
    )
    assert ci.classes["read"].latency_threshold_ms == spec.endpoint_classes["read"].latency_threshold_ms


def test_routes_are_named_with_their_method_only() -> None:
    targets = parse(targets_document(), "ci")
    assert targets.class_of("get", "/api/v1/projects") == "read"
    assert targets.class_of("DELETE", "/api/v1/projects") is None  # no route without its method


def _with(change: dict[str, Any]) -> dict[str, Any]:
    """The test document with dotted keys set (a value of ``...`` deletes the key)."""
    return with_changes(targets_document(), change)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"environments.ci.classes.read.p95_ms": -1},
            "environments.ci.classes.read.p95_ms: Input should be greater than or equal to 0",
        ),
        (
            {"environments.ci.classes.read.p95_ms": "fast"},
            "environments.ci.classes.read.p95_ms: Input should be a valid number",
        ),
        (
            {"environments.ci.classes.read.p96_ms": 5},
            "environments.ci.classes.read.p96_ms: Extra inputs are not permitted",
        ),
        (
            {"environments.ci.classes.read.latency_threshold_ms": ...},
            "environments.ci.classes.read.latency_threshold_ms: Field required",
        ),
        (
            {"environments.ci.availability_objective": 1.0},
            "environments.ci.availability_objective: Input should be less than 1",
        ),
        (
            {"environments.ci.classes.read": 3},
            "environments.ci.classes.read: Input should be a valid dictionary",
        ),
        ({"page_burn_rates": []}, "page_burn_rates: Tuple should have at least 1 item"),
        ({"page_burn_rates": [0.5]}, "page_burn_rates.0: Input should be greater than 1"),
        ({"schema_version": 2}, "schema_version: Input should be 1"),
        ({"routes": ["GET /x"]}, "routes: Input should be a valid dictionary"),
        # One shape: the one kit/slo.py writes (a route names its method; no key is optional).
        ({"routes./x": "read"}, "routes./x: String should match pattern"),
        ({"routes.FETCH /x": "read"}, "routes.FETCH /x: String should match pattern"),
        (
            {"environments.ci.classes.read.endpoints": ...},
            "environments.ci.classes.read.endpoints: Field required",
        ),
        (
            {"environments.ci.classes.read.max_error_ratio": ...},
            "environments.ci.classes.read.max_error_ratio: Field required",
        ),
        ({"environments.ci.min_throughput_rps": ...}, "environments.ci.min_throughput_rps: Field required"),
        ({"routes.GET /x": "nowhere"}, "routes name classes without targets in environments.ci: ['nowhere']"),
        (
            {"environments.ci.classes.read.max_error_ratio": 0.5},
            "classes.read.max_error_ratio 0.5 is not the availability budget 1 - 0.99",
        ),
    ],
)
def test_malformed_targets_are_refused_naming_the_key(change: dict[str, Any], message: str) -> None:
    with pytest.raises(TargetsError) as error:
        parse(_with(change), "ci", source="t.json")
    assert str(error.value).startswith("t.json: ")
    assert message in str(error.value)


def test_an_unknown_environment_names_the_known_ones() -> None:
    with pytest.raises(TargetsError, match=r"no targets for environment 'prod' \(known: ci\)"):
        parse(targets_document(), "prod")


def test_missing_or_unreadable_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TargetsError, match="not found: generate it from the SLO spec"):
        load("ci", tmp_path / "targets.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(TargetsError, match="is not valid JSON"):
        load("ci", bad)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(targets_document()))
    assert set(load("ci", good).classes) == {"read", "write", "health"}
