"""Typed, validated view of alerts/slo.yaml: the one source of truth for SLOs.

Everything that defends or checks an objective is generated from this spec by
``python -m kit.generate`` (``make generate``): Prometheus rules per environment,
dashboards and the load-test targets. The document is parsed by pydantic models
(``extra="forbid"``: an unknown key is an error, not ignored); impossible combinations
(a short window not shorter than its long one, a latency threshold between histogram
buckets, an objective so low that a burn-rate alert could never fire, ...) are refused
too. A bad spec stops the generator with one line naming the offending key
(``SpecError``), never a stack trace.

Load-test targets (``loadtests/targets.json``), schema version 1::

    {
      "schema_version": 1,
      "source": "alerts/slo.yaml",
      "alerting_environment": "prod",
      "page_burn_rates": [14.4, 6.0],     # critical burn rates: the gate must catch the slowest
      "routes": {"GET /api/v1/projects": "read", ...},   # "METHOD /route/template" -> class
      "environments": {
        "<env from config/environments.yaml>": {
          "availability_objective": 0.999,    # share of SLO requests not answered 5xx
          "latency_objective": 0.99,          # share of non-5xx SLO requests under the class threshold
          "min_throughput_rps": 127.0,        # sum over classes: what the service must sustain
          "classes": {
            "<read|write|auth|health>": {
              "endpoints": [{"method": "GET", "route": "/api/v1/projects"}, ...],
              "in_slo": true,                 # counted by the SLO alerts
              "latency_threshold_ms": 250,    # the latency SLI's "fast enough" bound
              "p95_ms": 100,                  # regression signal, reported next to the SLI verdict
              "p99_ms": 250,                  # informational
              "max_error_ratio": 0.001,       # the availability budget (1 - availability_objective)
              "min_throughput_rps": 100       # the offered rate covers this with headroom
            }
          }
        }
      }
    }

The load gate judges the SLIs themselves against the objectives (share of requests over the
class's latency threshold; share of 5xx and unanswered requests), with a confidence bound;
schema and reader in ``loadtests/targets.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, ValidationError

from kit import environments
from kit.paths import ALERTS

SPEC_FILE = ALERTS / "slo.yaml"
SEVERITIES = ("critical", "warning")
_DURATION = re.compile(r"^(\d+)(s|m|h|d)$")
_COMPOUND_DURATION = re.compile(r"^(?:\d+[dhms])+$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}


class SpecError(ValueError):
    """The SLO spec is invalid; the message names the key and the problem in one line."""


def parse_duration(text: object, where: str) -> int:
    """Prometheus-style single-unit duration ("5m", "1h", "3d") in seconds."""
    try:
        return _single_unit_duration(text)
    except ValueError as error:
        raise SpecError(f"{where}: {error}") from None


def _interval_seconds(text: object) -> int:
    """A Prometheus duration, compound allowed ("2m30s"), in seconds."""
    if not isinstance(text, str) or not _COMPOUND_DURATION.match(text):
        raise ValueError(f"{text!r} is not a duration like 30s, 2m30s or 5m")
    seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in re.findall(r"(\d+)([dhms])", text))
    if seconds == 0:
        raise ValueError(f"{text!r} is not a duration like 30s, 2m30s or 5m")
    return seconds


def format_duration(seconds: float) -> str:
    """Seconds -> the shortest exact Prometheus duration (3600 -> "1h", 150 -> "2m30s"); at least 1s."""
    whole = max(1, round(seconds))
    for unit in ("d", "h", "m"):
        if whole % _UNIT_SECONDS[unit] == 0:
            return f"{whole // _UNIT_SECONDS[unit]}{unit}"
    if whole > 60:
        return f"{whole // 60}m{whole % 60}s"
    return f"{whole}s"


# --- the document, as pydantic models (extra keys forbidden everywhere) -------------------


def _single_unit_duration(value: object) -> int:
    match = _DURATION.match(str(value)) if isinstance(value, str) else None
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"{value!r} is not a duration like 30s, 5m, 1h or 3d")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _endpoint_value(value: object) -> tuple[str, str]:
    parts = value.split() if isinstance(value, str) else []
    if len(parts) != 2 or parts[0] not in _METHODS or not parts[1].startswith("/"):
        raise ValueError(f"expected 'METHOD /route/template', got {value!r}")
    return parts[0], parts[1]


def _number(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {value!r}")
    return value


Seconds = Annotated[int, BeforeValidator(_single_unit_duration)]
Interval = Annotated[int, BeforeValidator(_interval_seconds)]
Positive = Annotated[float, BeforeValidator(_number), Field(gt=0)]
Ratio = Annotated[float, BeforeValidator(_number), Field(gt=0, lt=1)]
Text = Annotated[str, Field(min_length=1)]
Endpoint = Annotated[tuple[str, str], BeforeValidator(_endpoint_value)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, strict=False)


class _ServiceModel(_Model):
    name: Text
    # CamelCase: it prefixes every alert name.
    alert_prefix: Annotated[str, Field(pattern=r"^[A-Z][A-Za-z0-9]*$")]
    runbook_base_url: Text
    grafana_base_url: Text


class _SelectorsModel(_Model):
    api_job: Text
    worker_job: Text
    synthetic_job: Text
    kube_state_metrics_job: Text
    cadvisor_job: Text
    cert_manager_job: Text
    prometheus_job: Text
    api_deployment: Text
    pod_regex: Text
    deployment_regex: Text
    hpa_name: Text
    certificate_name: Annotated[str, Field(pattern=r"\{environment\}")]


class _WindowModel(_Model):
    severity: Literal["critical", "warning"]
    long: Seconds
    short: Seconds
    burn_rate: Positive
    for_: Seconds = Field(alias="for")


class _RollupModel(_Model):
    from_window: Seconds
    interval: Interval


class _ClassModel(_Model):
    endpoints: Annotated[list[Endpoint], Field(min_length=1)]
    in_slo: StrictBool
    latency_threshold_ms: Positive


class _TargetsModel(_Model):
    p95_ms: Positive
    p99_ms: Positive
    min_throughput_rps: Positive


class _TargetsOverrideModel(_Model):
    p95_ms: Positive | None = None
    p99_ms: Positive | None = None
    min_throughput_rps: Positive | None = None


class _ObjectivesModel(_Model):
    availability_objective: Ratio
    latency_objective: Ratio
    synthetic_objective: Ratio
    low_traffic_min_rps: Positive
    classes: dict[str, _TargetsModel]


class _ObjectivesOverrideModel(_Model):
    availability_objective: Ratio | None = None
    latency_objective: Ratio | None = None
    synthetic_objective: Ratio | None = None
    low_traffic_min_rps: Positive | None = None
    classes: dict[str, _TargetsOverrideModel] = Field(default_factory=dict)


class _ThresholdsModel(_Model):
    high_5xx_ratio: Ratio
    db_pool_saturation_ratio: Ratio
    outbox_oldest_pending_age_seconds: Positive
    outbox_poll_stale_seconds: Positive
    synthetic_probe_stale_seconds: Positive
    certificate_expiry_days: Positive
    certificate_expiry_critical_days: Positive


class _SpecModel(_Model):
    version: Literal[1]
    service: _ServiceModel
    selectors: _SelectorsModel
    alerting_environment: Text
    period: Seconds
    histogram_buckets_seconds: Annotated[list[Positive], Field(min_length=1)]
    burn_rate_windows: Annotated[list[_WindowModel], Field(min_length=1)]
    long_window_rollups: _RollupModel
    endpoint_classes: Annotated[dict[str, _ClassModel], Field(min_length=1)]
    defaults: _ObjectivesModel
    environments: dict[str, _ObjectivesOverrideModel] = Field(default_factory=dict)
    thresholds: _ThresholdsModel


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "slo.yaml"


def _one_line(error: ValidationError) -> str:
    """Pydantic's errors as one line; missing and unknown keys grouped per mapping, like a human would."""
    missing: dict[str, list[str]] = {}
    unknown: dict[str, list[str]] = {}
    other: list[str] = []
    for item in error.errors():
        loc = tuple(item["loc"])
        if item["type"] == "missing":
            missing.setdefault(_where(loc[:-1]), []).append(str(loc[-1]))
        elif item["type"] == "extra_forbidden":
            unknown.setdefault(_where(loc[:-1]), []).append(str(loc[-1]))
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
            if item["type"] == "literal_error" and loc == ("version",):
                message = f"only version 1 is understood, got {item['input']!r}"
            other.append(f"{_where(loc)}: {message}")
    parts = [f"{where}: unknown key(s) {', '.join(sorted(keys))}" for where, keys in unknown.items()]
    parts += [f"{where}: missing key(s) {', '.join(sorted(keys))}" for where, keys in missing.items()]
    return "; ".join(parts + other)


# --- the validated spec, as the generators use it -------------------------------------------


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    alert_prefix: str
    runbook_base_url: str
    grafana_base_url: str


@dataclass(frozen=True)
class Selectors:
    api_job: str
    worker_job: str
    synthetic_job: str
    kube_state_metrics_job: str
    cadvisor_job: str
    cert_manager_job: str
    prometheus_job: str
    api_deployment: str
    pod_regex: str
    deployment_regex: str
    hpa_name: str
    certificate_name: str  # template: {environment}


@dataclass(frozen=True)
class BurnRateWindow:
    severity: str
    long_seconds: int
    short_seconds: int
    burn_rate: float
    for_seconds: int


@dataclass(frozen=True)
class Rollups:
    """Windows of at least ``from_seconds`` are averaged from recorded 5m series, every ``interval``."""

    from_seconds: int
    interval_seconds: int


@dataclass(frozen=True)
class EndpointClass:
    name: str
    endpoints: tuple[tuple[str, str], ...]  # (method, route template)
    in_slo: bool
    latency_threshold_ms: int

    @property
    def latency_threshold_seconds(self) -> float:
        return self.latency_threshold_ms / 1000

    def selector_groups(self) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
        """(methods, routes) groups whose cross product is exactly this class's endpoints.

        Routes answered by the same set of methods share one PromQL selector, so a class
        needs as few `or` branches as possible and never matches an endpoint of another class.
        """
        methods_by_route: dict[str, set[str]] = {}
        for method, route in self.endpoints:
            methods_by_route.setdefault(route, set()).add(method)
        routes_by_methods: dict[tuple[str, ...], list[str]] = {}
        for route, methods in methods_by_route.items():
            routes_by_methods.setdefault(tuple(sorted(methods)), []).append(route)
        return [(methods, tuple(routes)) for methods, routes in routes_by_methods.items()]


@dataclass(frozen=True)
class ClassTargets:
    p95_ms: float
    p99_ms: float
    min_throughput_rps: float


@dataclass(frozen=True)
class Objectives:
    """What one environment promises (defaults merged with its overrides)."""

    environment: str
    availability_objective: float
    latency_objective: float
    synthetic_objective: float
    low_traffic_min_rps: float
    classes: dict[str, ClassTargets]

    @property
    def availability_error_budget(self) -> float:
        return 1 - self.availability_objective

    @property
    def latency_error_budget(self) -> float:
        return 1 - self.latency_objective

    def objective(self, slo: str) -> float:
        """The objective of an SLO by name (availability, latency, synthetic)."""
        value: float = getattr(self, f"{slo}_objective")
        return value


@dataclass(frozen=True)
class Thresholds:
    high_5xx_ratio: float
    db_pool_saturation_ratio: float
    outbox_oldest_pending_age_seconds: float
    outbox_poll_stale_seconds: float
    synthetic_probe_stale_seconds: float
    certificate_expiry_days: float
    certificate_expiry_critical_days: float


@dataclass(frozen=True)
class SloSpec:
    service: ServiceInfo
    selectors: Selectors
    alerting_environment: str
    period_seconds: int
    histogram_buckets_seconds: tuple[float, ...]
    burn_rate_windows: tuple[BurnRateWindow, ...]
    rollups: Rollups
    endpoint_classes: dict[str, EndpointClass]
    thresholds: Thresholds
    _objectives: dict[str, Objectives]

    @property
    def environments(self) -> list[str]:
        return list(self._objectives)

    def objectives(self, environment: str | None = None) -> Objectives:
        name = environment or self.alerting_environment
        try:
            return self._objectives[name]
        except KeyError:
            raise SpecError(f"unknown environment {name!r} (known: {', '.join(self._objectives)})") from None

    @cached_property
    def slo_classes(self) -> list[EndpointClass]:
        return [c for c in self.endpoint_classes.values() if c.in_slo]

    def class_of(self, method: str, route: str) -> str | None:
        for endpoint_class in self.endpoint_classes.values():
            if (method, route) in endpoint_class.endpoints:
                return endpoint_class.name
        return None


# --- cross-key checks pydantic cannot express per field -------------------------------------


def _check_classes(model: _SpecModel, buckets: tuple[float, ...]) -> dict[str, EndpointClass]:
    classes: dict[str, EndpointClass] = {}
    owner: dict[tuple[str, str], str] = {}
    for name, raw in model.endpoint_classes.items():
        where = f"endpoint_classes.{name}"
        threshold = raw.latency_threshold_ms
        if threshold / 1000 not in buckets:
            raise SpecError(
                f"{where}.latency_threshold_ms: {threshold:g} ms is not a histogram bucket bound "
                "(histogram_buckets_seconds), so the SLI could not count it exactly"
            )
        for endpoint in raw.endpoints:
            if endpoint in owner:
                raise SpecError(f"{where}: {endpoint[0]} {endpoint[1]} already in class {owner[endpoint]}")
            owner[endpoint] = name
        classes[name] = EndpointClass(name, tuple(raw.endpoints), raw.in_slo, int(threshold))
    if not any(c.in_slo for c in classes.values()):
        raise SpecError("endpoint_classes: at least one class must have in_slo: true")
    return classes


def _check_windows(model: _SpecModel) -> tuple[BurnRateWindow, ...]:
    windows = []
    for i, raw in enumerate(model.burn_rate_windows):
        if raw.short >= raw.long:
            raise SpecError(
                f"burn_rate_windows[{i}]: short window {format_duration(raw.short)} must be shorter than "
                f"long window {format_duration(raw.long)}"
            )
        if raw.long > model.period:
            raise SpecError(
                f"burn_rate_windows[{i}].long: {format_duration(raw.long)} is longer than the period "
                f"{format_duration(model.period)}"
            )
        windows.append(BurnRateWindow(raw.severity, raw.long, raw.short, raw.burn_rate, raw.for_))
    if {w.severity for w in windows} != set(SEVERITIES):
        raise SpecError(
            "burn_rate_windows: need at least one critical (page) and one warning (ticket) window pair"
        )
    return tuple(windows)


def _merge(
    name: str, base: Objectives, raw: _ObjectivesOverrideModel, classes: dict[str, EndpointClass]
) -> Objectives:
    where = f"environments.{name}"
    unknown = set(raw.classes) - set(classes)
    if unknown:
        raise SpecError(f"{where}.classes: unknown endpoint class(es) {', '.join(sorted(unknown))}")
    targets = {}
    for cls, inherited in base.classes.items():
        override = raw.classes.get(cls)
        values = override.model_dump(exclude_none=True) if override else {}
        targets[cls] = ClassTargets(**{**inherited.__dict__, **values})
    scalars = raw.model_dump(exclude_none=True, exclude={"classes"})
    return Objectives(**{**base.__dict__, "environment": name, **scalars, "classes": targets})


def _check_objectives(where: str, objectives: Objectives, windows: tuple[BurnRateWindow, ...]) -> None:
    for cls, targets in objectives.classes.items():
        if targets.p99_ms < targets.p95_ms:
            raise SpecError(
                f"{where}.classes.{cls}: p99_ms ({targets.p99_ms:g}) is below p95_ms ({targets.p95_ms:g})"
            )
    for slo in ("availability", "latency", "synthetic"):
        budget = 1 - objectives.objective(slo)
        fastest = max(w.burn_rate for w in windows)
        if fastest * budget >= 1:
            raise SpecError(
                f"{where}.{slo}_objective: {objectives.objective(slo):g} leaves a budget of {budget:g}, so "
                f"the {fastest:g}x burn-rate alert would need an error ratio of {fastest * budget:g} (>= 1) "
                "and could never fire"
            )


def parse(raw: object, known_environments: list[str]) -> SloSpec:
    """Validate a decoded spec; ``known_environments`` come from config/environments.yaml."""
    if not isinstance(raw, dict):
        raise SpecError(f"slo.yaml: expected a mapping, got {type(raw).__name__}")
    try:
        model = _SpecModel.model_validate(raw)
    except ValidationError as error:
        raise SpecError(_one_line(error)) from None
    buckets = tuple(model.histogram_buckets_seconds)
    if list(buckets) != sorted(set(buckets)):
        raise SpecError("histogram_buckets_seconds: must be strictly increasing")
    windows = _check_windows(model)
    if model.long_window_rollups.interval >= model.long_window_rollups.from_window:
        raise SpecError("long_window_rollups.interval: must be shorter than from_window")
    classes = _check_classes(model, buckets)

    missing = set(classes) - set(model.defaults.classes)
    if missing:
        raise SpecError(f"defaults.classes: missing targets for {', '.join(sorted(missing))}")
    unknown = set(model.defaults.classes) - set(classes)
    if unknown:
        raise SpecError(f"defaults.classes: unknown endpoint class(es) {', '.join(sorted(unknown))}")
    defaults_raw = model.defaults.model_dump(exclude={"classes"})
    defaults = Objectives(
        environment="defaults",
        classes={cls: ClassTargets(**t.model_dump()) for cls, t in model.defaults.classes.items()},
        **defaults_raw,
    )
    _check_objectives("defaults", defaults, windows)
    unknown_envs = set(model.environments) - set(known_environments)
    if unknown_envs:
        raise SpecError(
            f"environments: {', '.join(sorted(unknown_envs))} not in config/environments.yaml "
            f"({', '.join(known_environments)})"
        )
    objectives = {}
    for env in known_environments:
        merged = _merge(env, defaults, model.environments.get(env, _ObjectivesOverrideModel()), classes)
        _check_objectives(f"environments.{env}", merged, windows)
        objectives[env] = merged
    if model.alerting_environment not in objectives:
        raise SpecError(
            f"alerting_environment: {model.alerting_environment!r} not in config/environments.yaml"
        )
    thresholds = Thresholds(**model.thresholds.model_dump())
    if thresholds.certificate_expiry_critical_days >= thresholds.certificate_expiry_days:
        raise SpecError(
            "thresholds.certificate_expiry_critical_days: must be below certificate_expiry_days (the "
            "critical tier comes after the warning)"
        )
    return SloSpec(
        service=ServiceInfo(**model.service.model_dump()),
        selectors=Selectors(**model.selectors.model_dump()),
        alerting_environment=model.alerting_environment,
        period_seconds=model.period,
        histogram_buckets_seconds=buckets,
        burn_rate_windows=windows,
        rollups=Rollups(model.long_window_rollups.from_window, model.long_window_rollups.interval),
        endpoint_classes=classes,
        thresholds=thresholds,
        _objectives=objectives,
    )


def load(path: Path = SPEC_FILE) -> SloSpec:
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as error:
        raise SpecError(f"{path}: cannot read ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise SpecError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    return parse(raw, list(environments.load().environments))


def load_targets_document(spec: SloSpec) -> dict[str, Any]:
    """The loadtests/targets.json document (schema in this module's docstring)."""
    out: dict[str, Any] = {
        "schema_version": 1,
        "source": "alerts/slo.yaml",
        "alerting_environment": spec.alerting_environment,
        "page_burn_rates": sorted(
            {w.burn_rate for w in spec.burn_rate_windows if w.severity == "critical"}, reverse=True
        ),
        "routes": {
            f"{method} {route}": endpoint_class.name
            for endpoint_class in spec.endpoint_classes.values()
            for method, route in endpoint_class.endpoints
        },
        "environments": {},
    }
    for env in spec.environments:
        objectives = spec.objectives(env)
        classes = {}
        for endpoint_class in spec.endpoint_classes.values():
            targets = objectives.classes[endpoint_class.name]
            classes[endpoint_class.name] = {
                "endpoints": [{"method": m, "route": r} for m, r in endpoint_class.endpoints],
                "in_slo": endpoint_class.in_slo,
                "latency_threshold_ms": endpoint_class.latency_threshold_ms,
                "p95_ms": targets.p95_ms,
                "p99_ms": targets.p99_ms,
                "max_error_ratio": round(objectives.availability_error_budget, 6),
                "min_throughput_rps": targets.min_throughput_rps,
            }
        out["environments"][env] = {
            "availability_objective": objectives.availability_objective,
            "latency_objective": objectives.latency_objective,
            "min_throughput_rps": round(sum(c.min_throughput_rps for c in objectives.classes.values()), 3),
            "classes": classes,
        }
    return out
