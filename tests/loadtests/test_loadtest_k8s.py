"""Locust's distributed mode on Kubernetes: k8s/loadtest renders, validates strictly at 1.32.0,
is hardened like the service's manifests, and runs exactly the journeys CI runs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kit import k8s_checks
from kit.paths import K8S, LOADTESTS
from loadtests import k8s, shapes, targets

LOADTEST = K8S / "loadtest"


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    return k8s_checks.render(LOADTEST)


def test_renders_master_service_workers_and_the_journeys_configmap(rendered: list[dict[str, Any]]) -> None:
    # Generated ConfigMaps carry a content-hash suffix; the journeys ConfigMap is a plain resource.
    kinds = sorted(
        (
            o["kind"],
            "locust-settings"
            if o["metadata"]["name"].startswith("locust-settings-")
            else o["metadata"]["name"],
        )
        for o in rendered
    )
    assert kinds == [
        ("ConfigMap", "locust-journeys"),
        ("ConfigMap", "locust-settings"),
        ("Deployment", "locust-master"),
        ("Deployment", "locust-worker"),
        ("NetworkPolicy", "locust-master"),
        ("Service", "locust-master"),
        ("ServiceAccount", "locust"),
    ]
    journeys = next(
        o for o in k8s_checks.of_kind(rendered, "ConfigMap") if "journeys" in o["metadata"]["name"]
    )
    assert set(journeys["data"]) == set(k8s.SOURCES)


def test_validates_strictly_against_kubernetes_1_32(rendered: list[dict[str, Any]]) -> None:
    assert k8s_checks.schema_errors(rendered, "1.32.0") == []


def test_pods_are_hardened_and_sized(rendered: list[dict[str, Any]]) -> None:
    templates = k8s_checks.pod_templates(rendered)
    assert len(templates) == 2
    for template in templates:
        assert k8s_checks.pod_security_violations(template) == []
        assert template.spec["automountServiceAccountToken"] is False
        for _, container in template.containers():
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]) and {"cpu", "memory"} <= set(
                resources["limits"]
            )
            assert container["image"].endswith(":2.47.0")  # the Locust version of uv.lock


def test_the_committed_journeys_are_the_current_sources(rendered: list[dict[str, Any]]) -> None:
    assert k8s.JOURNEYS.read_text() == k8s.journeys_configmap(), "stale: run python -m loadtests.k8s"
    journeys = next(
        o for o in k8s_checks.of_kind(rendered, "ConfigMap") if o["metadata"]["name"] == "locust-journeys"
    )
    for name in k8s.SOURCES:
        assert journeys["data"][name] == (LOADTESTS / name).read_text()


def test_the_committed_plan_is_a_valid_fixed_plan() -> None:
    line = next(
        ln for ln in (LOADTEST / "plan.env").read_text().splitlines() if ln.startswith("LOADTEST_PLAN=")
    )
    plan = shapes.Plan.from_json(json.loads(line.split("=", 1)[1]))
    assert plan.kind == "fixed" and plan.peak_users > 0 and plan.warmup_seconds > 0
    # Every worker counts the SLO classes' thresholds exactly (the gate needs them for the SLIs).
    assert plan.latency_bounds_ms == targets.load_document().latency_bounds_ms
