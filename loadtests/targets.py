"""Read the load-test targets that the SLO spec generates (``loadtests/targets.json``).

The numbers are owned by the SLO spec (``alerts/slo.yaml`` -> ``kit/slo.py``); this module only
reads them, so the gate, the alert rules and the dashboards cannot drift apart.

Shape: per environment -> per endpoint class -> ``{p95_ms, p99_ms, max_error_ratio,
min_throughput_rps}``, plus a mapping from route (``"METHOD /template"`` or ``"/template"``) to
endpoint class.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.paths import LOADTESTS

TARGETS_FILE = LOADTESTS / "targets.json"


class TargetsError(ValueError):
    """The targets file is missing, malformed, or has no entry for what was asked."""


@dataclass(frozen=True)
class ClassTarget:
    """Limits for one endpoint class in one environment (``None`` = not gated)."""

    p95_ms: float | None
    p99_ms: float | None
    max_error_ratio: float | None
    min_throughput_rps: float | None


@dataclass(frozen=True)
class EnvironmentTargets:
    environment: str
    classes: dict[str, ClassTarget]
    routes: dict[str, str]
    source: str
    min_throughput_rps: float | None = None  # all endpoints together

    def class_of(self, method: str, route: str) -> str | None:
        """Endpoint class of a request (``method`` + route template); ``None`` when unmapped."""
        return self.routes.get(f"{method.upper()} {route}") or self.routes.get(route)

    def target_for(self, method: str, route: str) -> tuple[str | None, ClassTarget | None]:
        name = self.class_of(method, route)
        return name, (self.classes.get(name) if name else None)


def _number(raw: dict[str, Any], key: str, where: str) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise TargetsError(f"{where}.{key} must be a non-negative number, got {value!r}")
    return float(value)


def _class_target(raw: Any, where: str) -> ClassTarget:
    if not isinstance(raw, dict):
        raise TargetsError(f"{where} must be a mapping of limits, got {type(raw).__name__}")
    return ClassTarget(
        p95_ms=_number(raw, "p95_ms", where),
        p99_ms=_number(raw, "p99_ms", where),
        max_error_ratio=_number(raw, "max_error_ratio", where),
        min_throughput_rps=_number(raw, "min_throughput_rps", where),
    )


def parse(data: Any, environment: str, source: str = "targets") -> EnvironmentTargets:
    if not isinstance(data, dict) or not isinstance(data.get("environments"), dict):
        raise TargetsError(f"{source}: expected an object with an 'environments' mapping")
    environments = data["environments"]
    if environment not in environments:
        known = ", ".join(sorted(environments)) or "none"
        raise TargetsError(f"{source}: no targets for environment {environment!r} (known: {known})")
    raw_env = environments[environment]
    # Accept {"classes": {...}} or the classes directly under the environment.
    raw_classes = raw_env.get("classes", raw_env) if isinstance(raw_env, dict) else None
    if not isinstance(raw_classes, dict):
        raise TargetsError(f"{source}: environments.{environment} must be a mapping of endpoint classes")
    classes = {
        name: _class_target(value, f"environments.{environment}.{name}")
        for name, value in raw_classes.items()
    }
    routes = data.get("routes", {})
    if not isinstance(routes, dict) or not all(isinstance(v, str) for v in routes.values()):
        raise TargetsError(f"{source}: 'routes' must map route templates to endpoint class names")
    unknown = sorted({c for c in routes.values() if c not in classes})
    if unknown:
        raise TargetsError(f"{source}: routes refer to classes without targets in {environment}: {unknown}")
    total = (
        _number(raw_env, "min_throughput_rps", f"environments.{environment}")
        if "classes" in raw_env
        else None
    )
    return EnvironmentTargets(environment, classes, dict(routes), source, total)


def load(environment: str, path: Path = TARGETS_FILE) -> EnvironmentTargets:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise TargetsError(f"{path} not found: generate it from the SLO spec (make generate)") from None
    except json.JSONDecodeError as exc:
        raise TargetsError(f"{path} is not valid JSON: {exc}") from None
    return parse(data, environment, source=str(path))
