"""The Alertmanager example: valid for amtool, routes page vs ticket, inhibits duplicates."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest
import yaml

from kit import alerts_gen, environments, slo
from kit.paths import ALERTS

CONFIG = ALERTS / "alertmanager.yaml"
AM: dict[str, Any] = yaml.safe_load(CONFIG.read_text())
PREFIX = slo.load().service.alert_prefix
PROD = environments.load().get("prod").namespace
STAGING = environments.load().get("staging").namespace


def test_amtool_accepts_the_config() -> None:
    result = subprocess.run(
        ["amtool", "check-config", str(CONFIG)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (
            {"alertname": f"{PREFIX}AvailabilityBudgetBurn", "severity": "critical", "namespace": PROD},
            "pager",
        ),
        (
            {"alertname": f"{PREFIX}AvailabilityBudgetBurn", "severity": "warning", "namespace": PROD},
            "ticket",
        ),
        ({"alertname": f"{PREFIX}ApiAbsent", "severity": "critical", "job": "reference-service"}, "pager"),
        ({"alertname": f"{PREFIX}OutboxDeadLettered", "severity": "warning", "namespace": PROD}, "ticket"),
        # Staging rehearses the same rules but never wakes anyone up.
        ({"alertname": f"{PREFIX}LatencyBudgetBurn", "severity": "critical", "namespace": STAGING}, "ticket"),
        ({"alertname": f"{PREFIX}Watchdog", "severity": "none"}, "deadmansswitch"),
        ({"alertname": "SomethingElse", "severity": "none"}, "blackhole"),
    ],
)
def test_routing(labels: dict[str, str], receiver: str) -> None:
    result = subprocess.run(
        [
            "amtool",
            "config",
            "routes",
            "test",
            f"--config.file={CONFIG}",
            f"--verify.receivers={receiver}",
            *(f"{k}={v}" for k, v in labels.items()),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"{labels} routed to {result.stdout.strip()}, expected {receiver}"


def test_route_test_detects_a_wrong_receiver() -> None:
    result = subprocess.run(
        [
            "amtool",
            "config",
            "routes",
            "test",
            f"--config.file={CONFIG}",
            "--verify.receivers=pager",
            "severity=warning",
            f"namespace={PROD}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0


def test_config_names_only_real_alerts_and_namespaces() -> None:
    text = CONFIG.read_text()
    names = set(alerts_gen.alert_names(slo.load()))
    mentioned_names = set(re.findall(rf"\b{PREFIX}\w+", text))
    assert mentioned_names, "the example should route and inhibit by alert name"
    for mentioned in sorted(mentioned_names):
        assert mentioned in names, f"{mentioned} is not an alert of alerts/generated/rules.yaml"
    assert f'namespace="{STAGING}"' in text


def test_warnings_are_inhibited_by_criticals_of_the_same_alert() -> None:
    rule = AM["inhibit_rules"][0]
    assert rule["source_matchers"] == ['severity="critical"']
    assert rule["target_matchers"] == ['severity="warning"']
    assert set(rule["equal"]) == {"namespace", "alertname"}
