"""Locust's distributed mode on Kubernetes: k8s/loadtest renders, validates strictly at 1.32.0,
runs exactly the journeys CI runs, reaches the API of the environment under test through both
sides' NetworkPolicies, and ends (Jobs). Its hardening is checked by checkov like the service's
manifests (tests/k8s/test_k8s_checkov.py)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kit import environments, k8s_checks, k8s_overlays
from kit.environments import PodPeer
from kit.k8s_overlays import deployed
from kit.paths import K8S, LOADTESTS
from loadtests import k8s, shapes, targets

LOADTEST = K8S / "loadtest"
CONFIG = environments.load()


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
        ("Job", "locust-master"),
        ("Job", "locust-worker"),
        ("Namespace", "reference-service-loadtest"),
        ("NetworkPolicy", "default-deny-all"),
        ("NetworkPolicy", "locust-master"),
        ("NetworkPolicy", "locust-worker"),
        ("Service", "locust-master"),
        ("ServiceAccount", "locust"),
    ]
    journeys = next(
        o for o in k8s_checks.of_kind(rendered, "ConfigMap") if "journeys" in o["metadata"]["name"]
    )
    assert set(journeys["data"]) == set(k8s.SOURCES)


def test_validates_strictly_against_kubernetes_1_32(rendered: list[dict[str, Any]]) -> None:
    assert k8s_checks.schema_errors(rendered, "1.32.0") == []


def test_pods_run_the_locked_locust_with_a_writable_tmp(rendered: list[dict[str, Any]]) -> None:
    """Hardening and sizing are checkov's (tests/k8s/test_k8s_checkov.py scans k8s/loadtest)."""
    templates = k8s_checks.pod_templates(rendered)
    assert len(templates) == 2
    for template in templates:
        assert k8s_checks.writable_tmp_violations(template) == []
        for _, container in template.containers():
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


def _settings(rendered: list[dict[str, Any]]) -> dict[str, str]:
    config_map = next(
        o
        for o in k8s_checks.of_kind(rendered, "ConfigMap")
        if o["metadata"]["name"].startswith("locust-settings")
    )
    data: dict[str, str] = config_map["data"]
    return data


def _job(rendered: list[dict[str, Any]], name: str) -> dict[str, Any]:
    job = k8s_checks.find(rendered, "Job", name)
    assert job is not None
    return job


def test_runs_in_the_configured_namespace(rendered: list[dict[str, Any]]) -> None:
    assert CONFIG.loadtest_namespace is not None
    assert {o["metadata"].get("namespace", o["metadata"]["name"]) for o in rendered} == {
        CONFIG.loadtest_namespace
    }
    namespace = k8s_checks.find(rendered, "Namespace", CONFIG.loadtest_namespace)
    assert namespace is not None
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_the_master_is_a_job_that_ends(rendered: list[dict[str, Any]]) -> None:
    master = _job(rendered, "locust-master")
    assert master["spec"]["backoffLimit"] == 0  # a load test is never silently run twice
    assert master["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert "sleep" not in " ".join(master["spec"]["template"]["spec"]["containers"][0]["args"])
    workers = _job(rendered, "locust-worker")
    expected = int(_settings(rendered)["LOCUST_EXPECT_WORKERS"])
    assert workers["spec"]["parallelism"] == workers["spec"]["completions"] == expected


def test_the_master_prints_its_figures_and_keeps_locusts_exit_status(
    rendered: list[dict[str, Any]], tmp_path: Path
) -> None:
    """The master's shell step, run here with a stand-in `locust` that writes raw.json and fails."""
    container = _job(rendered, "locust-master")["spec"]["template"]["spec"]["containers"][0]
    figures = {"stats": [{"name": "GET /api/v1/projects", "num_requests": 3}], "note": "two\nlines"}
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "locust"
    fake.write_text(
        f"#!/bin/sh\ncat > \"$LOADTEST_RAW\" <<'EOF'\n{json.dumps(figures, indent=2)}\nEOF\nexit 1\n"
    )
    fake.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "LOADTEST_RAW": str(tmp_path / "out" / "raw.json"),
        "LOCUST_EXPECT_WORKERS": "2",
    }
    result = subprocess.run(
        [*container["command"], *container["args"]],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("LOADTEST_RAW ")]
    assert len(lines) == 1
    assert json.loads(lines[0].removeprefix("LOADTEST_RAW ")) == figures


def test_the_target_admits_the_workers_and_the_workers_reach_it(rendered: list[dict[str, Any]]) -> None:
    """Both NetworkPolicies along the path allow it: the workers' egress and the target's ingress."""
    host = _settings(rendered)["LOCUST_HOST"]
    target_namespace = host.removeprefix("http://").split(".")[1]
    target = next(env for env in deployed(CONFIG) if env.namespace == target_namespace)
    assert target.load_testing is not None, f"{target.name} does not accept load tests"
    worker = next(
        t for t in k8s_checks.pod_templates(rendered) if t.owner["metadata"]["name"] == "locust-worker"
    )
    assert worker.labels == {**worker.labels, **k8s_overlays.LOCUST_WORKER_LABELS}
    api_objects = k8s_checks.render(K8S / "overlays" / target.name)
    api = k8s_checks.find(api_objects, "Deployment", "reference-service-api")
    assert api is not None
    api_labels = api["spec"]["template"]["metadata"]["labels"]
    api_port = api["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]
    egress = [
        rule
        for policy in k8s_checks.of_kind(rendered, "NetworkPolicy")
        if policy["spec"]["podSelector"].get("matchLabels", {}).items() <= worker.labels.items()
        and policy["spec"]["podSelector"]
        for rule in policy["spec"].get("egress", [])
    ]
    assert any(
        api_port in {p["port"] for p in rule["ports"]}
        and any(
            peer.get("podSelector", {}).get("matchLabels", {}).items() <= api_labels.items()
            for peer in rule["to"]
        )
        for rule in egress
    )
    peer = PodPeer(namespace=str(CONFIG.loadtest_namespace), pod_labels=worker.labels)
    admitting = [
        rule
        for policy in k8s_checks.of_kind(api_objects, "NetworkPolicy")
        if policy["spec"]["podSelector"].get("matchLabels")
        and policy["spec"]["podSelector"]["matchLabels"].items() <= api_labels.items()
        for rule in policy["spec"].get("ingress", [])
        if k8s_checks.admits(rule, peer)
    ]
    assert admitting, "the target's NetworkPolicy does not admit the Locust workers"


def test_production_does_not_admit_the_load_generator() -> None:
    prod = k8s_checks.render(K8S / "overlays" / "prod")
    peer = PodPeer(namespace=str(CONFIG.loadtest_namespace), pod_labels=k8s_overlays.LOCUST_WORKER_LABELS)
    assert not any(
        k8s_checks.admits(rule, peer)
        for policy in k8s_checks.of_kind(prod, "NetworkPolicy")
        for rule in policy["spec"].get("ingress", [])
    )
