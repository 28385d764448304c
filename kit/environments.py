"""Typed view of config/environments.yaml, the one place for per-environment settings."""

from __future__ import annotations

from dataclasses import dataclass
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

    @property
    def base_url(self) -> str | None:
        return f"https://{self.host}" if self.host else None


@dataclass(frozen=True)
class EnvironmentsConfig:
    image_repository: str
    environments: dict[str, Environment]

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
        resources={k: Resources(**{f: str(v) for f, v in r.items()}) for k, r in resources.items()}
        if resources
        else None,
    )


@lru_cache
def load(path: Path = ENVIRONMENTS_FILE) -> EnvironmentsConfig:
    raw = yaml.safe_load(path.read_text())
    return EnvironmentsConfig(
        image_repository=raw["image"]["repository"],
        environments={name: _environment(name, env) for name, env in raw["environments"].items()},
    )
