"""Every overlay renders, validates against the Kubernetes schemas and passes the policy."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kit import k8s_checks
from kit.k8s_checks import Obj, find, of_kind
from tests.k8s.support import CONFIG, OVERLAYS, expectations


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_the_whole_service(rendered: dict[str, list[Obj]], overlay: str) -> None:
    kinds = {obj["kind"] for obj in rendered[overlay]}
    assert {
        "Namespace",
        "ServiceAccount",
        "ConfigMap",
        "Deployment",
        "Service",
        "Ingress",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "ServiceMonitor",
    } <= kinds
    assert [d["metadata"]["name"] for d in of_kind(rendered[overlay], "Deployment")] == [
        "reference-service-api",
        "reference-service-worker",
    ]


@pytest.mark.parametrize("version", k8s_checks.SUPPORTED_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_matches_the_kubernetes_schema(
    rendered: dict[str, list[Obj]], overlay: str, version: str
) -> None:
    assert k8s_checks.schema_errors(rendered[overlay], version) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_passes_the_policy(rendered: dict[str, list[Obj]], overlay: str) -> None:
    assert k8s_checks.policy_violations(rendered[overlay], expectations(overlay)) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_shutdown_fits_in_the_grace_period(rendered: dict[str, list[Obj]], overlay: str) -> None:
    """The arithmetic in k8s/base/api/deployment.yaml, read back from the rendered objects."""
    objects = rendered[overlay]
    api = find(objects, "Deployment", "reference-service-api")
    assert api is not None
    pod = api["spec"]["template"]["spec"]
    container = pod["containers"][0]
    config_map = find(objects, "ConfigMap", container["envFrom"][0]["configMapRef"]["name"])
    assert config_map is not None
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    drain = float(config_map["data"]["DRAIN_TIMEOUT_SECONDS"])
    delay = float(config_map["data"]["SHUTDOWN_DELAY_SECONDS"])
    grace = pod["terminationGracePeriodSeconds"]
    assert (pre_stop, delay, drain, grace) == (5, 0.0, 20.0, 35)
    assert pre_stop + delay + drain + k8s_checks.SHUTDOWN_MARGIN_SECONDS < grace


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_carries_its_environment_settings(rendered: dict[str, list[Obj]], overlay: str) -> None:
    env = CONFIG.get(overlay)
    objects = rendered[overlay]
    assert env.resources is not None
    for deployment, container, settings in (
        ("reference-service-api", "api", env.resources["api"]),
        ("reference-service-worker", "worker", env.resources["worker"]),
    ):
        found = find(objects, "Deployment", deployment)
        assert found is not None
        resources = found["spec"]["template"]["spec"]["containers"][0]["resources"]
        assert found["spec"]["template"]["spec"]["containers"][0]["name"] == container
        assert resources == {
            "requests": {"cpu": settings.cpu_request, "memory": settings.memory_request},
            "limits": {"cpu": settings.cpu_limit, "memory": settings.memory_limit},
        }
    worker = find(objects, "Deployment", "reference-service-worker")
    assert worker is not None
    assert worker["spec"]["replicas"] == env.worker_replicas
    config_map = of_kind(objects, "ConfigMap")[0]["data"]
    assert (config_map["ENVIRONMENT"], config_map["LOG_LEVEL"]) == (overlay, env.log_level)
    hpa = find(objects, "HorizontalPodAutoscaler", "reference-service-api")
    api = find(objects, "Deployment", "reference-service-api")
    assert api is not None
    if env.autoscaling is None:
        assert hpa is None
        assert api["spec"]["replicas"] == env.replicas
    else:
        assert hpa is not None
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (
            env.autoscaling.min,
            env.autoscaling.max,
        )
        metric_names = [m.get("pods", {}).get("metric", {}).get("name") for m in hpa["spec"]["metrics"]]
        assert ("http_requests_per_second" in metric_names) == (
            env.autoscaling.target_requests_per_second is not None
        )
    assert (find(objects, "PrometheusRule", "reference-service") is not None) == env.alerting


def test_production_like_environments_are_highly_available(rendered: dict[str, list[Obj]]) -> None:
    for overlay in ("staging", "prod"):
        hpa = find(rendered[overlay], "HorizontalPodAutoscaler", "reference-service-api")
        assert hpa is not None, overlay
        assert hpa["spec"]["minReplicas"] >= 2, overlay


def test_preview_is_cheap(rendered: dict[str, list[Obj]]) -> None:
    objects = rendered["preview"]
    assert of_kind(objects, "HorizontalPodAutoscaler") == []
    assert of_kind(objects, "PrometheusRule") == []
    replicas = {d["metadata"]["name"]: d["spec"]["replicas"] for d in of_kind(objects, "Deployment")}
    assert replicas == {"reference-service-api": 1, "reference-service-worker": 1}


# Fields that may legitimately differ between environments; everything else must be identical.
_PER_ENVIRONMENT_KINDS = {"HorizontalPodAutoscaler", "PrometheusRule"}


def _normalised(objects: list[Obj]) -> dict[str, Any]:
    result = {}
    for original in objects:
        if original["kind"] in _PER_ENVIRONMENT_KINDS:
            continue
        obj = copy.deepcopy(original)
        metadata = obj["metadata"]
        metadata.pop("namespace", None)
        for label in ("app.kubernetes.io/instance", "app.kubernetes.io/version"):
            metadata.get("labels", {}).pop(label, None)
        if obj["kind"] == "Namespace":
            metadata["name"] = "<namespace>"
        if obj["kind"] == "ConfigMap":
            metadata["name"] = "<config>"
            for per_environment in ("ENVIRONMENT", "LOG_LEVEL", "TRUSTED_HOSTS", "DOCS_ENABLED"):
                obj["data"].pop(per_environment, None)
        if obj["kind"] == "Ingress":
            for rule in obj["spec"]["rules"]:
                rule["host"] = "<host>"
            for tls in obj["spec"]["tls"]:
                tls["hosts"] = ["<host>"]
        if obj["kind"] == "Deployment":
            obj["spec"].pop("replicas", None)
            template = obj["spec"]["template"]
            for label in ("app.kubernetes.io/instance", "app.kubernetes.io/version"):
                template["metadata"]["labels"].pop(label)
            for container in template["spec"]["containers"] + template["spec"].get("initContainers", []):
                container["image"] = "<image>"
                for source in container.get("envFrom", []):
                    source["configMapRef"]["name"] = "<config>"
            for container in template["spec"]["containers"]:
                container["resources"] = "<resources>"
        result[f"{original['kind']}/{metadata['name']}"] = obj
    return result


@pytest.mark.parametrize("overlay", [o for o in OVERLAYS if o != "dev"])
def test_overlays_differ_only_in_environment_settings(rendered: dict[str, list[Obj]], overlay: str) -> None:
    assert _normalised(rendered[overlay]) == _normalised(rendered["dev"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_app_trusts_only_its_environments_host(rendered: dict[str, list[Obj]], overlay: str) -> None:
    objects = rendered[overlay]
    config_map = next(o for o in k8s_checks.of_kind(objects, "ConfigMap") if "TRUSTED_HOSTS" in o["data"])
    ingress = find(objects, "Ingress", "reference-service")
    assert ingress is not None
    assert config_map["data"]["TRUSTED_HOSTS"] == ingress["spec"]["rules"][0]["host"]
