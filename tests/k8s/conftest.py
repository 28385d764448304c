"""Shared fixtures for the Kubernetes manifest checks: rendered overlays and scratch copies."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from kit import k8s_checks
from kit.k8s_checks import Obj
from kit.paths import K8S
from tests.k8s.support import OVERLAYS, replace_once


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[Obj]]:
    """Every committed overlay rendered once per test session (kubectl kustomize)."""
    return {name: k8s_checks.render(K8S / "overlays" / name) for name in OVERLAYS}


@pytest.fixture
def k8s_copy(tmp_path: Path) -> Path:
    """A scratch copy of k8s/ to break or edit without touching the repository."""
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    return copy


@pytest.fixture
def edit() -> Callable[[Path, str, str], None]:
    """Replace one exact snippet in a file (tests.k8s.support.replace_once)."""
    return replace_once


@pytest.fixture(scope="session")
def platform() -> list[Obj]:
    """The shared edge (k8s/platform/gateway) rendered once per test session."""
    return k8s_checks.render(K8S / "platform" / "gateway")
