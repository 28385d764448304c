"""Typed, validated view of alerts/slo.yaml: the one source of truth for SLOs.

Everything that defends or checks an objective is generated from this spec by
``python -m kit.generate`` (``make generate``): Prometheus rules, dashboard
thresholds and the load-test targets. A bad spec stops the generator with one
line naming the offending key (``SpecError``), never a stack trace.

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
from typing import Any

import yaml

from kit import environments
from kit.paths import ALERTS

SPEC_FILE = ALERTS / "slo.yaml"
SEVERITIES = ("critical", "warning")
_DURATION = re.compile(r"^(\d+)(s|m|h|d)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}


class SpecError(ValueError):
    """The SLO spec is invalid; the message names the key and the problem in one line."""


def parse_duration(text: object, where: str) -> int:
    """Prometheus-style single-unit duration ("5m", "1h", "3d") in seconds."""
    match = _DURATION.match(str(text))
    if not match or int(match.group(1)) == 0:
        raise SpecError(f"{where}: {text!r} is not a duration like 30s, 5m, 1h or 3d")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def format_duration(seconds: float) -> str:
    """Seconds -> the shortest exact Prometheus duration (3600 -> "1h"); at least 1s."""
    whole = max(1, round(seconds))
    for unit in ("d", "h", "m"):
        if whole % _UNIT_SECONDS[unit] == 0:
            return f"{whole // _UNIT_SECONDS[unit]}{unit}"
    return f"{whole}s"


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
    kube_state_metrics_job: str
    cert_manager_job: str
    pod_regex: str
    hpa_name: str
    certificate_regex: str


@dataclass(frozen=True)
class BurnRateWindow:
    severity: str
    long_seconds: int
    short_seconds: int
    burn_rate: float
    for_seconds: int


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
    low_traffic_min_rps: float
    classes: dict[str, ClassTargets]

    @property
    def availability_error_budget(self) -> float:
        return 1 - self.availability_objective

    @property
    def latency_error_budget(self) -> float:
        return 1 - self.latency_objective


@dataclass(frozen=True)
class Thresholds:
    high_5xx_ratio: float
    db_pool_saturation_ratio: float
    outbox_oldest_pending_age_seconds: float
    crash_loop_restarts_15m: float
    certificate_expiry_days: float


@dataclass(frozen=True)
class SloSpec:
    service: ServiceInfo
    selectors: Selectors
    alerting_environment: str
    period_seconds: int
    histogram_buckets_seconds: tuple[float, ...]
    burn_rate_windows: tuple[BurnRateWindow, ...]
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


# --- parsing helpers: each raises SpecError naming the dotted key -------------------------


def _mapping(
    raw: object, where: str, required: set[str], optional: set[str] | frozenset[str] = frozenset()
) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: expected a mapping, got {type(raw).__name__}")
    unknown = set(raw) - required - optional
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    missing = required - set(raw)
    if missing:
        raise SpecError(f"{where}: missing key(s) {', '.join(sorted(missing))}")
    return raw


def _text(raw: object, where: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise SpecError(f"{where}: expected a non-empty string")
    return raw


def _number(raw: object, where: str, *, positive: bool = True) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise SpecError(f"{where}: expected a number, got {raw!r}")
    if positive and raw <= 0:
        raise SpecError(f"{where}: must be > 0, got {raw}")
    return float(raw)


def _ratio(raw: object, where: str) -> float:
    value = _number(raw, where)
    if not 0 < value < 1:
        raise SpecError(f"{where}: an objective must be strictly between 0 and 1, got {raw}")
    return value


def _endpoint(raw: object, where: str) -> tuple[str, str]:
    parts = _text(raw, where).split()
    if len(parts) != 2 or parts[0] not in _METHODS or not parts[1].startswith("/"):
        raise SpecError(f"{where}: expected 'METHOD /route/template', got {raw!r}")
    return parts[0], parts[1]


def _endpoint_class(name: str, raw: object, buckets: tuple[float, ...]) -> EndpointClass:
    where = f"endpoint_classes.{name}"
    data = _mapping(raw, where, {"endpoints", "in_slo", "latency_threshold_ms"})
    if not isinstance(data["endpoints"], list) or not data["endpoints"]:
        raise SpecError(f"{where}.endpoints: expected a non-empty list")
    endpoints = tuple(_endpoint(e, f"{where}.endpoints[{i}]") for i, e in enumerate(data["endpoints"]))
    threshold = _number(data["latency_threshold_ms"], f"{where}.latency_threshold_ms")
    if threshold / 1000 not in buckets:
        raise SpecError(
            f"{where}.latency_threshold_ms: {threshold:g} ms is not a histogram bucket bound "
            "(histogram_buckets_seconds), so the SLI could not count it exactly"
        )
    if not isinstance(data["in_slo"], bool):
        raise SpecError(f"{where}.in_slo: expected true or false")
    return EndpointClass(name, endpoints, data["in_slo"], int(threshold))


def _class_targets(raw: object, where: str, base: ClassTargets | None) -> ClassTargets:
    fields = {"p95_ms", "p99_ms", "min_throughput_rps"}
    data = _mapping(raw, where, fields if base is None else set(), set() if base is None else fields)
    values = {key: _number(data[key], f"{where}.{key}") for key in data}
    merged = ClassTargets(**{**(base.__dict__ if base else {}), **values})
    if merged.p99_ms < merged.p95_ms:
        raise SpecError(f"{where}: p99_ms ({merged.p99_ms:g}) is below p95_ms ({merged.p95_ms:g})")
    return merged


def _objectives(
    name: str, raw: object, classes: dict[str, EndpointClass], base: Objectives | None
) -> Objectives:
    where = "defaults" if base is None else f"environments.{name}"
    scalar = {"availability_objective", "latency_objective", "low_traffic_min_rps"}
    data = _mapping(
        raw,
        where,
        scalar | {"classes"} if base is None else set(),
        set() if base is None else scalar | {"classes"},
    )
    class_raw = data.get("classes", {})
    if not isinstance(class_raw, dict):
        raise SpecError(f"{where}.classes: expected a mapping")
    unknown = set(class_raw) - set(classes)
    if unknown:
        raise SpecError(f"{where}.classes: unknown endpoint class(es) {', '.join(sorted(unknown))}")
    if base is None and set(class_raw) != set(classes):
        raise SpecError(
            f"{where}.classes: missing targets for {', '.join(sorted(set(classes) - set(class_raw)))}"
        )
    targets = {
        cls: _class_targets(class_raw[cls], f"{where}.classes.{cls}", None)
        if base is None
        else _class_targets(class_raw.get(cls, {}), f"{where}.classes.{cls}", base.classes[cls])
        for cls in classes
    }
    return Objectives(
        environment=name,
        availability_objective=_ratio(data["availability_objective"], f"{where}.availability_objective")
        if "availability_objective" in data
        else base.availability_objective,  # type: ignore[union-attr]
        latency_objective=_ratio(data["latency_objective"], f"{where}.latency_objective")
        if "latency_objective" in data
        else base.latency_objective,  # type: ignore[union-attr]
        low_traffic_min_rps=_number(data["low_traffic_min_rps"], f"{where}.low_traffic_min_rps")
        if "low_traffic_min_rps" in data
        else base.low_traffic_min_rps,  # type: ignore[union-attr]
        classes=targets,
    )


def _burn_rate_window(raw: object, where: str) -> BurnRateWindow:
    data = _mapping(raw, where, {"severity", "long", "short", "burn_rate", "for"})
    if data["severity"] not in SEVERITIES:
        raise SpecError(
            f"{where}.severity: expected one of {', '.join(SEVERITIES)}, got {data['severity']!r}"
        )
    long_s, short_s = (
        parse_duration(data["long"], f"{where}.long"),
        parse_duration(data["short"], f"{where}.short"),
    )
    if short_s >= long_s:
        raise SpecError(
            f"{where}: short window {data['short']} must be shorter than long window {data['long']}"
        )
    return BurnRateWindow(
        data["severity"],
        long_s,
        short_s,
        _number(data["burn_rate"], f"{where}.burn_rate"),
        parse_duration(data["for"], f"{where}.for"),
    )


def parse(raw: object, known_environments: list[str]) -> SloSpec:
    """Validate a decoded spec; ``known_environments`` come from config/environments.yaml."""
    top = _mapping(
        raw,
        "slo.yaml",
        {
            "version",
            "service",
            "selectors",
            "alerting_environment",
            "period",
            "histogram_buckets_seconds",
            "burn_rate_windows",
            "endpoint_classes",
            "defaults",
            "thresholds",
        },
        {"environments"},
    )
    if top["version"] != 1:
        raise SpecError(f"version: only version 1 is understood, got {top['version']!r}")
    service_raw = _mapping(
        top["service"], "service", {"name", "alert_prefix", "runbook_base_url", "grafana_base_url"}
    )
    service = ServiceInfo(**{k: _text(v, f"service.{k}") for k, v in service_raw.items()})
    if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", service.alert_prefix):
        raise SpecError(
            "service.alert_prefix: must be CamelCase letters and digits (it prefixes alert names)"
        )
    selector_keys = set(Selectors.__dataclass_fields__)
    selectors_raw = _mapping(top["selectors"], "selectors", selector_keys)
    selectors = Selectors(**{k: _text(v, f"selectors.{k}") for k, v in selectors_raw.items()})

    buckets_raw = top["histogram_buckets_seconds"]
    if not isinstance(buckets_raw, list) or not buckets_raw:
        raise SpecError("histogram_buckets_seconds: expected a non-empty list of numbers")
    buckets = tuple(_number(b, f"histogram_buckets_seconds[{i}]") for i, b in enumerate(buckets_raw))
    if list(buckets) != sorted(set(buckets)):
        raise SpecError("histogram_buckets_seconds: must be strictly increasing")

    if not isinstance(top["burn_rate_windows"], list) or not top["burn_rate_windows"]:
        raise SpecError("burn_rate_windows: expected a non-empty list")
    windows = tuple(
        _burn_rate_window(w, f"burn_rate_windows[{i}]") for i, w in enumerate(top["burn_rate_windows"])
    )
    if {w.severity for w in windows} != set(SEVERITIES):
        raise SpecError(
            "burn_rate_windows: need at least one critical (page) and one warning (ticket) window pair"
        )

    if not isinstance(top["endpoint_classes"], dict) or not top["endpoint_classes"]:
        raise SpecError("endpoint_classes: expected a non-empty mapping")
    classes = {
        name: _endpoint_class(name, raw_class, buckets) for name, raw_class in top["endpoint_classes"].items()
    }
    if not any(c.in_slo for c in classes.values()):
        raise SpecError("endpoint_classes: at least one class must have in_slo: true")
    owner: dict[tuple[str, str], str] = {}
    for endpoint_class in classes.values():
        for endpoint in endpoint_class.endpoints:
            if endpoint in owner:
                raise SpecError(
                    f"endpoint_classes.{endpoint_class.name}: {endpoint[0]} {endpoint[1]} already in class "
                    f"{owner[endpoint]}"
                )
            owner[endpoint] = endpoint_class.name

    defaults = _objectives("defaults", top["defaults"], classes, None)
    overrides = top.get("environments") or {}
    if not isinstance(overrides, dict):
        raise SpecError("environments: expected a mapping of environment name to overrides")
    unknown_envs = set(overrides) - set(known_environments)
    if unknown_envs:
        raise SpecError(
            f"environments: {', '.join(sorted(unknown_envs))} not in config/environments.yaml "
            f"({', '.join(known_environments)})"
        )
    objectives = {
        env: _objectives(env, overrides.get(env, {}), classes, defaults) for env in known_environments
    }
    alerting_environment = _text(top["alerting_environment"], "alerting_environment")
    if alerting_environment not in objectives:
        raise SpecError(f"alerting_environment: {alerting_environment!r} not in config/environments.yaml")

    thresholds_raw = _mapping(top["thresholds"], "thresholds", set(Thresholds.__dataclass_fields__))
    thresholds = Thresholds(**{k: _number(v, f"thresholds.{k}") for k, v in thresholds_raw.items()})
    for key in ("high_5xx_ratio", "db_pool_saturation_ratio"):
        _ratio(getattr(thresholds, key), f"thresholds.{key}")

    return SloSpec(
        service=service,
        selectors=selectors,
        alerting_environment=alerting_environment,
        period_seconds=parse_duration(top["period"], "period"),
        histogram_buckets_seconds=buckets,
        burn_rate_windows=windows,
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
