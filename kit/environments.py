"""Typed view of config/environments.yaml, the one place for per-environment settings."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from kit.paths import CONFIG

ENVIRONMENTS_FILE = CONFIG / "environments.yaml"


@dataclass(frozen=True)
class Resources:
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str


@dataclass(frozen=True)
class Autoscaling:
    min: int
    max: int
    target_cpu_percent: int
    # Per-pod request rate for the HPA's Pods metric; None where no custom-metrics adapter runs.
    target_requests_per_second: int | None = None


@dataclass(frozen=True)
class LoadTesting:
    """An environment the in-cluster load test may target (k8s/loadtest)."""

    # RATE_LIMIT_<CLASS> overrides ("N/period"), sized for Locust workers: raised, never off.
    rate_limits: dict[str, str]


@dataclass(frozen=True)
class Quota:
    cpu: str
    memory: str
    pods: int


@dataclass(frozen=True)
class Environment:
    name: str
    local: bool = False
    namespace: str | None = None
    host: str | None = None
    image_tag: str | None = None
    log_level: str = "INFO"
    replicas: int = 1
    worker_replicas: int = 1
    autoscaling: Autoscaling | None = None
    resources: dict[str, Resources] | None = None
    # Whether the alert rules (PrometheusRule) are deployed; off for pull-request previews.
    alerting: bool = True
    # Per-pull-request environments: "{pr}" is replaced by the pull request number.
    namespace_template: str | None = None
    host_template: str | None = None
    # Zones the API must spread over (whenUnsatisfiable DoNotSchedule); None: best effort.
    min_zones: int | None = None
    # OTLP traces to the tracing_collector (endpoint setting and NetworkPolicy egress).
    tracing: bool = False
    load_testing: LoadTesting | None = None
    # Per-pull-request environments: hours to live (expiry label) and the namespace's quota.
    preview_ttl_hours: int | None = None
    quota: Quota | None = None

    @property
    def base_url(self) -> str | None:
        return f"https://{self.host}" if self.host else None

    def for_pull_request(self, number: int) -> Environment:
        """This environment instantiated for one pull request (namespace and host pr-<n>)."""
        if not self.namespace_template or not self.host_template:
            raise ValueError(f"environment {self.name!r} has no namespace_template/host_template")
        if number < 1:
            raise ValueError(f"pull request number must be positive, got {number}")
        return replace(
            self,
            namespace=self.namespace_template.format(pr=number),
            host=self.host_template.format(pr=number),
        )


@dataclass(frozen=True)
class PodPeer:
    """Pods outside the service's namespace, found by namespace name and pod labels."""

    namespace: str
    pod_labels: dict[str, str]


@dataclass(frozen=True)
class Edge:
    """The shared Gateway API edge (k8s/platform/gateway)."""

    gateway_class: str
    gateway_namespace: str
    gateway_name: str
    cluster_issuer: str
    proxy_peer: PodPeer


@dataclass(frozen=True)
class TracingCollector:
    namespace: str
    service: str
    port: int
    pod_labels: dict[str, str]

    @property
    def endpoint(self) -> str:
        return f"http://{self.service}.{self.namespace}.svc.cluster.local:{self.port}"


@dataclass(frozen=True)
class Capacity:
    """Measured per-pod capacity knee (req/s) and the share of it autoscaling aims for."""

    knee_rps_per_pod: float
    target_fraction: float


@dataclass(frozen=True)
class EnvironmentsConfig:
    image_repository: str
    environments: dict[str, Environment]
    edge: Edge | None = None
    tracing_collector: TracingCollector | None = None
    loadtest_namespace: str | None = None
    capacity: Capacity | None = None

    def get(self, name: str) -> Environment:
        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(sorted(self.environments))
            raise KeyError(f"unknown environment {name!r} (known: {known})") from None


def _environment(name: str, raw: dict[str, Any]) -> Environment:
    scaling = raw.get("autoscaling")
    resources = raw.get("resources")
    return Environment(
        name=name,
        local=bool(raw.get("local", False)),
        namespace=raw.get("namespace"),
        host=raw.get("host"),
        image_tag=raw.get("image_tag"),
        log_level=raw.get("log_level", "INFO"),
        replicas=int(raw.get("replicas", 1)),
        worker_replicas=int(raw.get("worker_replicas", 1)),
        autoscaling=Autoscaling(**scaling) if scaling else None,
        alerting=bool(raw.get("alerting", True)),
        namespace_template=raw.get("namespace_template"),
        host_template=raw.get("host_template"),
        min_zones=raw.get("min_zones"),
        tracing=bool(raw.get("tracing", False)),
        load_testing=LoadTesting(rate_limits=dict(raw["load_testing"].get("rate_limits", {})))
        if raw.get("load_testing")
        else None,
        preview_ttl_hours=raw.get("preview_ttl_hours"),
        quota=Quota(**raw["quota"]) if raw.get("quota") else None,
        resources={k: Resources(**{f: str(v) for f, v in r.items()}) for k, r in resources.items()}
        if resources
        else None,
    )


@lru_cache
def load(path: Path = ENVIRONMENTS_FILE) -> EnvironmentsConfig:
    raw = yaml.safe_load(path.read_text())
    edge = raw.get("edge")
    collector = raw.get("tracing_collector")
    return EnvironmentsConfig(
        image_repository=raw["image"]["repository"],
        environments={name: _environment(name, env) for name, env in raw["environments"].items()},
        edge=Edge(
            gateway_class=edge["gateway_class"],
            gateway_namespace=edge["gateway"]["namespace"],
            gateway_name=edge["gateway"]["name"],
            cluster_issuer=edge["cluster_issuer"],
            proxy_peer=PodPeer(**edge["proxy_peer"]),
        )
        if edge
        else None,
        tracing_collector=TracingCollector(**collector) if collector else None,
        loadtest_namespace=raw.get("loadtest_namespace"),
        capacity=Capacity(**raw["capacity"]) if raw.get("capacity") else None,
    )
