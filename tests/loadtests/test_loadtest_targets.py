"""The reader of the SLO-generated targets, against the real file and against broken ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kit import environments
from loadtests import shapes
from loadtests.targets import TARGETS_FILE, TargetsError, load, parse


@pytest.mark.parametrize("environment", sorted(environments.load().environments))
def test_every_environment_has_targets_for_every_journey_route(environment: str) -> None:
    targets = load(environment)
    journey_routes = {r for task in shapes.TASK_REQUESTS.values() for r in task} | {
        f"POST {shapes.REGISTER}",
        "GET /health/live",
        "GET /health/ready",
    }
    for route in sorted(journey_routes):
        method, template = route.split(" ", 1)
        class_name, target = targets.target_for(method, template)
        assert class_name is not None, f"{route} has no SLO class in {TARGETS_FILE}"
        assert target is not None and target.p95_ms is not None and target.max_error_ratio is not None


def test_ci_targets_are_read_as_numbers_with_a_total_throughput() -> None:
    ci = load("ci")
    assert ci.class_of("GET", shapes.PROJECTS) == "read"
    assert ci.classes["read"].p95_ms and ci.classes["read"].p95_ms > 0
    assert ci.min_throughput_rps and ci.min_throughput_rps > 0


def test_route_without_method_matches_any_method() -> None:
    data = {"routes": {"/x": "c"}, "environments": {"e": {"classes": {"c": {"p95_ms": 5}}}}}
    assert parse(data, "e").class_of("DELETE", "/x") == "c"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "expected an object with an 'environments' mapping"),
        ({"environments": {"prod": {}}}, "no targets for environment 'ci' (known: prod)"),
        (
            {"environments": {"ci": {"classes": {"read": {"p95_ms": -1}}}}},
            "read.p95_ms must be a non-negative",
        ),
        (
            {"environments": {"ci": {"classes": {"read": {"p95_ms": "fast"}}}}},
            "must be a non-negative number",
        ),
        ({"environments": {"ci": {"classes": {"read": 3}}}}, "must be a mapping of limits"),
        (
            {"routes": {"GET /x": "write"}, "environments": {"ci": {"classes": {"read": {}}}}},
            "routes refer to classes without targets in ci: ['write']",
        ),
        (
            {"routes": ["GET /x"], "environments": {"ci": {"classes": {}}}},
            "'routes' must map route templates",
        ),
    ],
)
def test_malformed_targets_are_refused_with_a_clear_message(data: object, message: str) -> None:
    with pytest.raises(TargetsError) as error:
        parse(data, "ci")
    assert message in str(error.value)


def test_missing_or_unreadable_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TargetsError, match="not found: generate it from the SLO spec"):
        load("ci", tmp_path / "targets.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(TargetsError, match="is not valid JSON"):
        load("ci", bad)
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"environments": {"ci": {"classes": {}}}}))
    assert load("ci", good).classes == {}
