"""Every overlay renders, validates against the Kubernetes schemas and passes the policy."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from kit import k8s_checks, k8s_overlays
from kit.k8s_checks import Obj, find, of_kind
from kit.k8s_overlays import PREVIEW_EXPIRES_LABEL, PREVIEW_PR_LABEL
from tests.k8s.support import CONFIG, OVERLAYS, expectations

PREVIEW_LABELS = (PREVIEW_PR_LABEL, PREVIEW_EXPIRES_LABEL)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_the_whole_service(rendered: dict[str, list[Obj]], overlay: str) -> None:
    kinds = {obj["kind"] for obj in rendered[overlay]}
    assert {
        "Namespace",
        "ServiceAccount",
        "ConfigMap",
        "Deployment",
        "Service",
        "HTTPRoute",
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
_PER_ENVIRONMENT_KINDS = {"HorizontalPodAutoscaler", "PrometheusRule", "ResourceQuota", "LimitRange"}
# Objects only environments with a setting have (env-resources.yaml; tested on their own below).
_PER_ENVIRONMENT_OBJECTS = {"reference-service-otlp", "reference-service-api-loadtest"}
_PER_ENVIRONMENT_SETTINGS = ("ENVIRONMENT", "LOG_LEVEL", "TRUSTED_HOSTS", "OTEL_EXPORTER_OTLP_ENDPOINT")


def _normalised(objects: list[Obj]) -> dict[str, Any]:
    result = {}
    for original in objects:
        if original["kind"] in _PER_ENVIRONMENT_KINDS:
            continue
        if original["metadata"]["name"] in _PER_ENVIRONMENT_OBJECTS:
            continue
        if original["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "synthetic-probe":
            continue  # not in previews: tests/cli/test_synthetic_probe.py checks where it is
        obj = copy.deepcopy(original)
        metadata = obj["metadata"]
        metadata.pop("namespace", None)
        for label in ("app.kubernetes.io/instance", "app.kubernetes.io/version", *PREVIEW_LABELS):
            metadata.get("labels", {}).pop(label, None)
        if obj["kind"] == "Namespace":
            metadata["name"] = "<namespace>"
        if obj["kind"] == "ConfigMap":
            metadata["name"] = "<config>"
            for per_environment in _PER_ENVIRONMENT_SETTINGS:
                obj["data"].pop(per_environment, None)
            for key in [k for k in obj["data"] if k.startswith("RATE_LIMIT_")]:
                obj["data"].pop(key)
        if obj["kind"] == "HTTPRoute":
            obj["spec"]["hostnames"] = ["<host>"]
            for parent in obj["spec"]["parentRefs"]:
                parent["sectionName"] = "<listener>"
        if obj["kind"] == "Deployment":
            obj["spec"].pop("replicas", None)
            # Zone spread: enforced where the environment sets min_zones (checked by the policy).
            for constraint in obj["spec"]["template"]["spec"]["topologySpreadConstraints"]:
                constraint.pop("minDomains", None)
                constraint["whenUnsatisfiable"] = "<per environment>"
            template = obj["spec"]["template"]
            for label in ("app.kubernetes.io/instance", "app.kubernetes.io/version"):
                template["metadata"]["labels"].pop(label)
            for label in PREVIEW_LABELS:
                template["metadata"]["labels"].pop(label, None)
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
    route = find(objects, "HTTPRoute", "reference-service")
    assert route is not None
    assert [config_map["data"]["TRUSTED_HOSTS"]] == route["spec"]["hostnames"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_load_test_access_follows_the_setting(rendered: dict[str, list[Obj]], overlay: str) -> None:
    """Only environments with `load_testing` admit Locust and raise their limits; none turns them off."""
    env = CONFIG.get(overlay)
    objects = rendered[overlay]
    policy = find(objects, "NetworkPolicy", "reference-service-api-loadtest")
    config_map = of_kind(objects, "ConfigMap")[0]["data"]
    limits = {k: v for k, v in config_map.items() if k.startswith("RATE_LIMIT_")}
    assert "RATE_LIMIT_ENABLED" not in config_map
    if env.load_testing is None:
        assert policy is None
        assert limits == {}
        return
    assert policy is not None
    source = policy["spec"]["ingress"][0]["from"][0]
    assert source["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": CONFIG.loadtest_namespace
    }
    assert source["podSelector"]["matchLabels"] == k8s_overlays.LOCUST_WORKER_LABELS
    assert limits == {f"RATE_LIMIT_{k.upper()}": v for k, v in env.load_testing.rate_limits.items()}


def test_production_never_relaxes_its_rate_limits() -> None:
    from kit.environments import LoadTesting

    prod = CONFIG.get("prod").model_copy(
        update={"load_testing": LoadTesting(rate_limits={"login": "1000/minute"})}
    )
    with pytest.raises(k8s_overlays.OverlayError, match="may not change production's rate limits"):
        k8s_overlays.render_overlay(prod, CONFIG)


def test_a_rate_limit_override_must_be_a_limit() -> None:
    from kit.environments import LoadTesting

    staging = CONFIG.get("staging").model_copy(
        update={"load_testing": LoadTesting(rate_limits={"login": "off"})}
    )
    with pytest.raises(k8s_overlays.OverlayError, match=r"rate_limits.login: 'off' is not a limit"):
        k8s_overlays.render_overlay(staging, CONFIG)


def test_tracing_opens_egress_to_the_collector_only(k8s_copy: Path) -> None:
    staging = CONFIG.get("staging").model_copy(update={"tracing": True})
    overlay = k8s_copy / "overlays" / "staging"
    for name, text in k8s_overlays.render_overlay(staging, CONFIG).items():
        (overlay / name).write_text(text)
    objects = k8s_checks.render(overlay)
    assert k8s_checks.policy_violations(objects, expectations("staging")) == []
    collector = CONFIG.tracing_collector
    assert collector is not None
    config_map = of_kind(objects, "ConfigMap")[0]["data"]
    assert config_map["OTEL_EXPORTER_OTLP_ENDPOINT"] == collector.endpoint
    policy = find(objects, "NetworkPolicy", "reference-service-otlp")
    assert policy is not None
    assert policy["spec"]["egress"] == [
        {
            "to": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": collector.namespace}
                    },
                    "podSelector": {"matchLabels": collector.pod_labels},
                }
            ],
            "ports": [{"port": collector.port, "protocol": "TCP"}],
        }
    ]


def test_without_tracing_no_otlp_egress(rendered: dict[str, list[Obj]]) -> None:
    for overlay in OVERLAYS:
        assert (find(rendered[overlay], "NetworkPolicy", "reference-service-otlp") is not None) == CONFIG.get(
            overlay
        ).tracing


def test_prod_enforces_its_zone_spread(rendered: dict[str, list[Obj]]) -> None:
    api = find(rendered["prod"], "Deployment", "reference-service-api")
    assert api is not None
    zone = api["spec"]["template"]["spec"]["topologySpreadConstraints"][0]
    assert (zone["topologyKey"], zone["whenUnsatisfiable"], zone["minDomains"]) == (
        "topology.kubernetes.io/zone",
        "DoNotSchedule",
        CONFIG.get("prod").min_zones,
    )


def test_autoscaling_targets_stay_below_the_measured_knee() -> None:
    from kit.environments import Autoscaling

    capacity = CONFIG.capacity
    assert capacity is not None
    prod = CONFIG.get("prod")
    assert prod.autoscaling is not None
    k8s_overlays.check_capacity(prod, capacity)
    greedy = prod.model_copy(
        update={"autoscaling": prod.autoscaling.model_copy(update={"target_requests_per_second": 300})}
    )
    with pytest.raises(k8s_overlays.OverlayError, match=r"above 0\.7 x the measured knee 380 = 266"):
        k8s_overlays.check_capacity(greedy, capacity)
    hot = prod.model_copy(update={"autoscaling": Autoscaling(min=3, max=12, target_cpu_percent=180)})
    with pytest.raises(k8s_overlays.OverlayError, match=r"0.9 CPU, above 0.7 x the 1 limit"):
        k8s_overlays.check_capacity(hot, capacity)


def test_the_adapter_counts_only_api_traffic() -> None:
    """The requests-per-second metric leaves probes and scrapes out (they are not load)."""
    import re

    import yaml

    from kit.paths import K8S

    rules = yaml.safe_load((K8S / "components/autoscaling/prometheus-adapter-rules.yaml").read_text())
    query = rules["rules"][0]["metricsQuery"]
    pattern = re.search(r'route=~"([^"]+)"', query)
    assert pattern is not None, query
    counted = re.compile(pattern.group(1))
    assert counted.fullmatch("/api/v1/projects")
    for not_load in ("/health/live", "/health/ready", "/metrics", "unmatched"):
        assert not counted.fullmatch(not_load), not_load
