"""Helpers the Kubernetes tests share (plain module: conftest.py holds only fixtures)."""

from __future__ import annotations

from pathlib import Path

from kit import environments
from kit.environments import Edge
from kit.k8s_checks import Expectations
from kit.k8s_overlays import deployed

CONFIG = environments.load()
OVERLAYS = [env.name for env in deployed(CONFIG)]
assert CONFIG.edge is not None, "config/environments.yaml needs `edge:`"
EDGE: Edge = CONFIG.edge


def expectations(
    name: str, namespace: str | None = None, host: str | None = None, version: str | None = None
) -> Expectations:
    """What overlay `name` must render according to config/environments.yaml."""
    env = CONFIG.get(name)
    assert env.namespace
    assert env.host
    assert env.image_tag
    return Expectations(
        namespace or env.namespace,
        host or env.host,
        CONFIG.image_repository,
        version or env.image_tag,
        gateway=(EDGE.gateway_namespace, EDGE.gateway_name),
        edge_peer=EDGE.proxy_peer,
        min_zones=env.min_zones,
    )


def replace_once(path: Path, old: str, new: str) -> None:
    """Replace one exact snippet in a file, failing loudly when the snippet is not there."""
    text = path.read_text()
    assert old in text, f"{old!r} not found in {path}"
    path.write_text(text.replace(old, new, 1))
