"""Schema of config/environments.yaml, the one place for per-environment settings.

Read by the overlay generator (kit/k8s_overlays.py, which also renders the shared Gateway from
`edge`), the load tests (loadtests/) and the Pulumi program (infra/). Unknown keys are refused,
and so are combinations that cannot work; every error names the key path
(``environments.prod.autoscaling.min: ...``).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kit.paths import CONFIG

ENVIRONMENTS_FILE = CONFIG / "environments.yaml"


class EnvironmentsError(ValueError):
    """config/environments.yaml is invalid: one line per problem, each naming the key."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Resources(_Model):
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str

    @field_validator("*", mode="before")
    @classmethod
    def _quantity(cls, value: object) -> object:
        # YAML reads `cpu_limit: 1` as an int; Kubernetes quantities are strings.
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


class Autoscaling(_Model):
    min: int = Field(ge=1)
    max: int = Field(ge=1)
    # Of the CPU request (Kubernetes' utilisation): above 100 where the limit is above the request;
    # kit/k8s_overlays.py refuses a target above the measured capacity share of the limit.
    target_cpu_percent: int = Field(ge=1)
    # Per-pod request rate for the HPA's Pods metric; None where no custom-metrics adapter runs.
    target_requests_per_second: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
        if self.min > self.max:
            raise ValueError(f"min: {self.min} is above max {self.max}")
        return self


class LoadTesting(_Model):
    """An environment the in-cluster load test may target (k8s/loadtest)."""

    # RATE_LIMIT_<CLASS> overrides ("N/period"), sized for Locust workers: raised, never off.
    rate_limits: dict[str, str] = Field(default_factory=dict)


class Quota(_Model):
    """A per-pull-request namespace's ResourceQuota."""

    cpu: str
    memory: str
    pods: int = Field(ge=1)

    @field_validator("cpu", "memory", mode="before")
    @classmethod
    def _quantity(cls, value: object) -> object:
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


class PodPeer(_Model):
    """Pods outside the service's namespace, found by namespace name and pod labels."""

    namespace: str = Field(min_length=1)
    pod_labels: dict[str, str] = Field(min_length=1)


class GatewayRef(_Model):
    namespace: str = Field(min_length=1)
    name: str = Field(min_length=1)


class Edge(_Model):
    """The shared Gateway API edge (k8s/platform/gateway, deployed by infra/components/addons.py)."""

    gateway_class: str = Field(min_length=1)
    gateway: GatewayRef
    cluster_issuer: str = Field(min_length=1)
    proxy_peer: PodPeer

    @property
    def gateway_namespace(self) -> str:
        return self.gateway.namespace

    @property
    def gateway_name(self) -> str:
        return self.gateway.name


class TracingCollector(_Model):
    namespace: str = Field(min_length=1)
    service: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    pod_labels: dict[str, str] = Field(min_length=1)

    @property
    def endpoint(self) -> str:
        return f"http://{self.service}.{self.namespace}.svc.cluster.local:{self.port}"


class Capacity(_Model):
    """Measured per-pod capacity knee (req/s) and the share of it autoscaling aims for."""

    knee_rps_per_pod: float = Field(gt=0)
    target_fraction: float = Field(gt=0, le=1)


# --- infrastructure settings (read by the Pulumi program only) ----------------------------------


class NetworkSettings(_Model):
    cidr: str
    availability_zones: int = Field(ge=2, le=6)
    # single: one NAT gateway (a single point of failure, cheap); one_per_az: one per zone.
    nat: Literal["single", "one_per_az"]

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        network = ipaddress.ip_network(value)
        if network.version != 4 or network.prefixlen > 20:
            raise ValueError(
                f"{value} must be an IPv4 network of /20 or larger (six subnets are cut from it)"
            )
        return value


class NodeGroupSettings(_Model):
    instance_types: list[str] = Field(min_length=1)
    min_size: int = Field(ge=1)
    desired_size: int = Field(ge=1)
    max_size: int = Field(ge=1)
    disk_size_gib: int = Field(default=50, ge=20)

    @model_validator(mode="after")
    def _sizes(self) -> NodeGroupSettings:
        if not self.min_size <= self.desired_size <= self.max_size:
            raise ValueError(
                f"desired_size: needs min_size <= desired_size <= max_size "
                f"(got {self.min_size} <= {self.desired_size} <= {self.max_size})"
            )
        return self


class ClusterSettings(_Model):
    kubernetes_version: str = Field(pattern=r"^1\.\d+$")
    node_group: NodeGroupSettings


class DatabaseSettings(_Model):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,53}$")  # room for the _migrator role suffix
    engine_version: str = Field(pattern=r"^\d+(\.\d+)?$")
    instance_class: str = Field(pattern=r"^db\.")
    allocated_storage_gib: int = Field(ge=20)
    max_allocated_storage_gib: int = Field(ge=20)
    multi_az: bool
    backup_retention_days: int = Field(ge=1, le=35)
    deletion_protection: bool
    # Take a snapshot when the instance is deleted (skip_final_snapshot = not final_snapshot).
    final_snapshot: bool
    # pulumi protect=True: `pulumi destroy` refuses to delete the instance.
    protect: bool
    performance_insights: bool = False
    # A role that may create databases and roles, for the pull-request previews on this server.
    preview_admin: bool = False

    @model_validator(mode="after")
    def _combination(self) -> DatabaseSettings:
        if self.max_allocated_storage_gib < self.allocated_storage_gib:
            raise ValueError("max_allocated_storage_gib: is below allocated_storage_gib")
        if self.protect and not (self.deletion_protection and self.final_snapshot):
            raise ValueError("protect: a protected database needs deletion_protection and final_snapshot too")
        return self


class CacheSettings(_Model):
    node_type: str = Field(pattern=r"^cache\.")
    nodes: int = Field(ge=1, le=6)
    multi_az: bool
    tls: bool
    auth_token: bool
    snapshot_retention_days: int = Field(default=0, ge=0, le=35)

    @model_validator(mode="after")
    def _combination(self) -> CacheSettings:
        if self.multi_az and self.nodes < 2:
            raise ValueError("multi_az: needs nodes >= 2 (a replica in another zone to fail over to)")
        if self.auth_token and not self.tls:
            raise ValueError("auth_token: ElastiCache accepts an auth token only with tls: true")
        return self


class InfraSettings(_Model):
    network: NetworkSettings
    cluster: ClusterSettings
    database: DatabaseSettings
    cache: CacheSettings


# --- environments --------------------------------------------------------------------------------


class Environment(_Model):
    name: str
    local: bool = False
    namespace: str | None = None
    host: str | None = None
    image_tag: str | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Fixed API replica count; only without autoscaling (with an HPA, min/max own the count).
    replicas: int = Field(default=1, ge=1)
    worker_replicas: int = Field(default=1, ge=0)
    autoscaling: Autoscaling | None = None
    resources: dict[Literal["api", "worker"], Resources] | None = None
    # Whether the alert rules (PrometheusRule) are deployed; off for pull-request previews.
    alerting: bool = True
    # Per-pull-request environments: "{pr}" is replaced by the pull request number.
    namespace_template: str | None = None
    host_template: str | None = None
    # Zones the API must spread over (whenUnsatisfiable DoNotSchedule); None: best effort.
    min_zones: int | None = Field(default=None, ge=2)
    # OTLP traces to the tracing_collector (endpoint setting and NetworkPolicy egress).
    tracing: bool = False
    load_testing: LoadTesting | None = None
    # Previews: hours after its last deployment until the sweepers (infra/previews.py, the
    # preview.kit/expires-at label) may delete it, and the namespace's ResourceQuota.
    preview_ttl_hours: int | None = Field(default=None, ge=1, le=24 * 30)
    quota: Quota | None = None
    # What the Pulumi program creates for this environment (AWS network, cluster, data stores).
    infra: InfraSettings | None = None

    @model_validator(mode="after")
    def _combination(self) -> Environment:
        if self.autoscaling is not None and "replicas" in self.model_fields_set:
            raise ValueError(
                "replicas: cannot be set while autoscaling is on (the HPA's min/max own the replica count)"
            )
        for key in ("namespace_template", "host_template"):
            template = getattr(self, key)
            if template is not None and "{pr}" not in template:
                raise ValueError(f"{key}: {template!r} has no {{pr}} placeholder")
        if (self.namespace_template is None) != (self.host_template is None):
            raise ValueError("namespace_template: needs host_template too (and the other way round)")
        if self.preview_ttl_hours is not None and self.namespace_template is None:
            raise ValueError(
                "preview_ttl_hours: only per-pull-request environments (with namespace_template) expire"
            )
        if self.quota is not None and self.namespace_template is None:
            raise ValueError("quota: only per-pull-request environments (with namespace_template) have one")
        if self.load_testing is not None and self.name == "prod":
            raise ValueError("load_testing: never in prod (its rate limits would be raised for everyone)")
        if self.min_zones is not None and self.infra is not None:
            zones = self.infra.network.availability_zones
            if self.min_zones > zones:
                raise ValueError(
                    f"min_zones: {self.min_zones} is above infra.network.availability_zones {zones}"
                    " (pods would stay Pending)"
                )
        if self.namespace_template is not None and self.infra is not None:
            raise ValueError("infra: previews create no infrastructure of their own (they use dev's)")
        if self.local and (self.namespace or self.infra):
            raise ValueError("local: a loopback environment has no namespace and no infra")
        return self

    @property
    def is_preview(self) -> bool:
        return self.namespace_template is not None

    @property
    def base_url(self) -> str | None:
        return f"https://{self.host}" if self.host else None

    def for_pull_request(self, number: int) -> Environment:
        """This environment instantiated for one pull request (namespace and host from the templates)."""
        if not self.namespace_template or not self.host_template:
            raise ValueError(f"environment {self.name!r} has no namespace_template/host_template")
        if number < 1:
            raise ValueError(f"pull request number must be positive, got {number}")
        return self.model_copy(
            update={
                "namespace": self.namespace_template.format(pr=number),
                "host": self.host_template.format(pr=number),
            }
        )


class Image(_Model):
    repository: str


class EnvironmentsConfig(_Model):
    image: Image
    # The shared Gateway every deployed environment's HTTPRoute attaches to.
    edge: Edge | None = None
    # Where traces go for environments with `tracing: true`.
    tracing_collector: TracingCollector | None = None
    # The in-cluster load test's namespace; environments with `load_testing` admit its pods.
    loadtest_namespace: str | None = None
    capacity: Capacity | None = None
    environments: dict[str, Environment] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _names(cls, raw: Any) -> Any:
        # The key is the environment's name; copy it in so every Environment knows its own.
        if isinstance(raw, dict) and isinstance(raw.get("environments"), dict):
            envs = {}
            for name, env in raw["environments"].items():
                if isinstance(env, dict):
                    if "name" in env:
                        raise ValueError(f"environments.{name}.name: the key is the name; remove it")
                    env = {"name": name, **env}
                envs[name] = env
            raw = {**raw, "environments": envs}
        return raw

    @model_validator(mode="after")
    def _references(self) -> EnvironmentsConfig:
        for name, env in self.environments.items():
            if env.tracing and self.tracing_collector is None:
                raise ValueError(f"environments.{name}.tracing: true needs a top-level tracing_collector")
            if env.load_testing is not None and not self.loadtest_namespace:
                raise ValueError(f"environments.{name}.load_testing: needs a top-level loadtest_namespace")
        return self

    @property
    def image_repository(self) -> str:
        return self.image.repository

    def get(self, name: str) -> Environment:
        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(sorted(self.environments))
            raise KeyError(f"unknown environment {name!r} (known: {known})") from None


def _problems(error: ValidationError) -> list[str]:
    lines = []
    for item in error.errors():
        # A refused mapping key shows up as an extra "[key]" step after the key itself.
        where = ".".join(str(part) for part in item["loc"] if part != "[key]")
        message = str(item["msg"]).removeprefix("Value error, ")
        # A model-level check names its key first ("replicas: ..."): append it to the path.
        key, sep, rest = message.partition(": ")
        if sep and key.isidentifier():
            where, message = f"{where}.{key}" if where else key, rest
        lines.append(f"{where}: {message}" if where else message)
    return lines


def parse(raw: object) -> EnvironmentsConfig:
    """Validate decoded YAML; raises EnvironmentsError with one line per problem."""
    try:
        return EnvironmentsConfig.model_validate(raw)
    except ValidationError as error:
        raise EnvironmentsError(_problems(error)) from None


@lru_cache
def load(path: Path = ENVIRONMENTS_FILE) -> EnvironmentsConfig:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise EnvironmentsError([f"{path}: {error}"]) from None
    try:
        return parse(raw)
    except EnvironmentsError as error:
        raise EnvironmentsError([f"{path.name}: {line}" for line in error.problems]) from None
