"""Absolute paths of the repository's folders, so tools work from any working directory."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config"
ALERTS = ROOT / "alerts"
DASHBOARDS = ROOT / "dashboards"
RUNBOOKS = ROOT / "runbooks"
K8S = ROOT / "k8s"
LOADTESTS = ROOT / "loadtests"
SERVICE = ROOT / "service"
