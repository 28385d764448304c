"""Read the load-test targets that the SLO spec generates (``loadtests/targets.json``).

The numbers are owned by the SLO spec (``alerts/slo.yaml`` -> ``kit/slo.py``); this module only
reads them, through a strict schema: exactly the shape kit/slo.py writes (every key present,
unknown keys refused, every error naming its key path), so the gate, the alert rules and the
dashboards cannot drift apart.

What the gate uses per environment: the availability and latency objectives (the verdict) and
per endpoint class its latency threshold (what "slow" means) and whether it is in the SLO. The
p95/p99 targets are a regression signal shown next to the verdict; ``min_throughput_rps`` sets
the offered rate (every class gets it with headroom) and is reported, not judged.
``page_burn_rates`` are the burn rates the alerts page on: a judged SLI must catch the slowest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from kit.paths import LOADTESTS

TARGETS_FILE = LOADTESTS / "targets.json"

METHOD = "GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS"
Objective = Annotated[float, Field(gt=0, lt=1)]
NonNegative = Annotated[float, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]


class TargetsError(ValueError):
    """The targets file is missing, malformed, or has no entry for what was asked."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Endpoint(_Strict):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    route: Annotated[str, Field(pattern=r"^/")]


class ClassTarget(_Strict):
    """One endpoint class in one environment (``None`` = no such reference); no key is optional."""

    endpoints: tuple[Endpoint, ...]
    in_slo: bool
    latency_threshold_ms: Positive
    p95_ms: NonNegative | None  # regression signal, reported
    p99_ms: NonNegative | None  # informational
    max_error_ratio: Annotated[float, Field(ge=0, le=1)]  # = 1 - availability_objective
    min_throughput_rps: NonNegative | None  # sets the offered rate; reported


class EnvironmentDocument(_Strict):
    availability_objective: Objective
    latency_objective: Objective
    min_throughput_rps: NonNegative | None
    classes: dict[str, ClassTarget]

    @model_validator(mode="after")
    def _error_ratio_is_the_budget(self) -> EnvironmentDocument:
        budget = 1 - self.availability_objective
        for name, target in self.classes.items():
            if abs(target.max_error_ratio - budget) > 1e-6:
                raise ValueError(
                    f"classes.{name}.max_error_ratio {target.max_error_ratio:g} is not the availability "
                    f"budget 1 - {self.availability_objective:g}"
                )
        return self


class TargetsDocument(_Strict):
    schema_version: Literal[1]
    source: str
    alerting_environment: str
    page_burn_rates: Annotated[tuple[Annotated[float, Field(gt=1)], ...], Field(min_length=1)]
    # "METHOD /route/template" -> endpoint class: a route is always named with its method.
    routes: dict[Annotated[str, Field(pattern=rf"^({METHOD}) /")], str]
    environments: dict[str, EnvironmentDocument]

    @property
    def latency_bounds_ms(self) -> tuple[float, ...]:
        """Every class's latency threshold in any environment: what the locustfile counts exactly."""
        return tuple(
            sorted(
                {
                    float(t.latency_threshold_ms)
                    for e in self.environments.values()
                    for t in e.classes.values()
                }
            )
        )

    @model_validator(mode="after")
    def _routes_name_known_classes(self) -> TargetsDocument:
        for env, document in self.environments.items():
            unknown = sorted({c for c in self.routes.values() if c not in document.classes})
            if unknown:
                raise ValueError(f"routes name classes without targets in environments.{env}: {unknown}")
        return self


class EnvironmentTargets:
    """The targets of one environment, as the gate and the reports read them."""

    def __init__(self, environment: str, document: TargetsDocument, source: str) -> None:
        env = document.environments[environment]
        self.environment = environment
        self.source = source
        self.routes = dict(document.routes)
        self.classes = dict(env.classes)
        self.availability_objective = env.availability_objective
        self.latency_objective = env.latency_objective
        self.min_throughput_rps = env.min_throughput_rps  # all endpoints together
        self.page_burn_rates = document.page_burn_rates

    @property
    def latency_bounds_ms(self) -> tuple[float, ...]:
        """Every class's latency threshold: what the locustfile must count exactly."""
        return tuple(sorted({float(t.latency_threshold_ms) for t in self.classes.values()}))

    def class_of(self, method: str, route: str) -> str | None:
        """Endpoint class of a request (``method`` + route template); ``None`` when unmapped."""
        return self.routes.get(f"{method.upper()} {route}")

    def target_for(self, method: str, route: str) -> tuple[str | None, ClassTarget | None]:
        name = self.class_of(method, route)
        return name, (self.classes.get(name) if name else None)


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    # A refused mapping key shows up as an extra "[key]" step after the key itself.
    where = ".".join(str(part) for part in first["loc"] if part != "[key]")
    message = first["msg"].removeprefix("Value error, ")
    more = f" (+{error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}: {message}{more}" if where else f"{message}{more}"


def parse_document(data: Any, source: str = "targets") -> TargetsDocument:
    try:
        return TargetsDocument.model_validate(data)
    except ValidationError as error:
        raise TargetsError(f"{source}: {_first_error(error)}") from None


def _select(document: TargetsDocument, environment: str, source: str) -> EnvironmentTargets:
    if environment not in document.environments:
        known = ", ".join(sorted(document.environments)) or "none"
        raise TargetsError(f"{source}: no targets for environment {environment!r} (known: {known})")
    return EnvironmentTargets(environment, document, source)


def parse(data: Any, environment: str, source: str = "targets") -> EnvironmentTargets:
    return _select(parse_document(data, source), environment, source)


def load_document(path: Path = TARGETS_FILE) -> TargetsDocument:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise TargetsError(f"{path} not found: generate it from the SLO spec (make generate)") from None
    except json.JSONDecodeError as exc:
        raise TargetsError(f"{path} is not valid JSON: {exc}") from None
    return parse_document(data, str(path))


def load(environment: str, path: Path = TARGETS_FILE) -> EnvironmentTargets:
    return _select(load_document(path), environment, str(path))
