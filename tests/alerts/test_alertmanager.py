"""The Alertmanager example: valid for amtool; only production pages; inhibition stays in one namespace.

Routing is checked with `amtool config routes test` on a table of hand-written cases (dev,
staging, prod, a preview namespace, a missing namespace, a missing environment) and on every
alert the generated rule files can raise, with the labels they carry.
"""

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
SPEC = slo.load()
PREFIX = SPEC.service.alert_prefix
SERVICE = SPEC.service.name
ENVS = environments.load()
PROD = ENVS.get("prod").namespace
STAGING = ENVS.get("staging").namespace
DEV = ENVS.get("dev").namespace
PREVIEW = ENVS.get("preview").for_pull_request(123).namespace


def routes_test(labels: dict[str, str], *options: str) -> subprocess.CompletedProcess[str]:
    """`amtool config routes test` of the committed config for an alert with ``labels``."""
    return subprocess.run(
        [
            "amtool",
            "config",
            "routes",
            "test",
            f"--config.file={CONFIG}",
            *options,
            *(f"{k}={v}" for k, v in labels.items()),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def route(labels: dict[str, str]) -> str:
    result = routes_test(labels)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_amtool_accepts_the_config() -> None:
    result = subprocess.run(
        ["amtool", "check-config", str(CONFIG)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _ours(**labels: str) -> dict[str, str]:
    return {"service": SERVICE, **labels}


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (
            _ours(
                alertname=f"{PREFIX}AvailabilityBudgetBurn",
                severity="critical",
                environment="prod",
                namespace=PROD,
            ),
            "pager",
        ),
        (
            _ours(
                alertname=f"{PREFIX}AvailabilityBudgetBurn",
                severity="warning",
                environment="prod",
                namespace=PROD,
            ),
            "ticket",
        ),
        (
            _ours(
                alertname=f"{PREFIX}ApiNoAvailableReplicas",
                severity="critical",
                environment="prod",
                namespace=PROD,
            ),
            "pager",
        ),
        # A prod alert without a namespace label (absent() of a whole job) still pages.
        (
            _ours(
                alertname=f"{PREFIX}ApiAbsent",
                severity="critical",
                environment="prod",
                job="reference-service",
            ),
            "pager",
        ),
        (
            _ours(
                alertname=f"{PREFIX}OutboxDeadLettered",
                severity="warning",
                environment="prod",
                namespace=PROD,
            ),
            "ticket",
        ),
        # Staging rehearses the same rules but never wakes anyone up.
        (
            _ours(
                alertname=f"{PREFIX}LatencyBudgetBurn",
                severity="critical",
                environment="staging",
                namespace=STAGING,
            ),
            "ticket",
        ),
        (
            _ours(
                alertname=f"{PREFIX}PodCrashLooping",
                severity="warning",
                environment="staging",
                namespace=STAGING,
            ),
            "ticket",
        ),
        # dev and previews go nowhere (their own dashboards show them), whatever the severity.
        (
            _ours(alertname=f"{PREFIX}ApiAbsent", severity="critical", environment="dev", namespace=DEV),
            "blackhole",
        ),
        (
            _ours(alertname=f"{PREFIX}PodCrashLooping", severity="warning", environment="dev", namespace=DEV),
            "blackhole",
        ),
        (
            _ours(
                alertname=f"{PREFIX}AvailabilityBudgetBurn",
                severity="warning",
                environment="preview",
                namespace=PREVIEW,
            ),
            "blackhole",
        ),
        # Even a (mis-labelled) critical from a preview namespace never reaches the pager.
        (
            _ours(
                alertname=f"{PREFIX}ApiAbsent", severity="critical", environment="preview", namespace=PREVIEW
            ),
            "blackhole",
        ),
        # The prod namespace alone does not page: the environment label does.
        (_ours(alertname=f"{PREFIX}ApiAbsent", severity="critical", namespace=PROD), "ticket"),
        # Neither namespace nor environment: a rule without labels is a ticket to fix it.
        (_ours(alertname=f"{PREFIX}ApiAbsent", severity="critical"), "ticket"),
        (_ours(alertname=f"{PREFIX}Watchdog", severity="none", environment="prod"), "deadmansswitch"),
        (_ours(alertname=f"{PREFIX}Watchdog", severity="none", environment="dev"), "blackhole"),
        # Another service's critical in the same Alertmanager is not ours to page for.
        (
            {"alertname": "SomethingElse", "severity": "critical", "environment": "prod", "namespace": PROD},
            "ticket",
        ),
    ],
)
def test_routing(labels: dict[str, str], receiver: str) -> None:
    assert route(labels) == receiver, labels


def _every_generated_alert() -> list[tuple[str, dict[str, str]]]:
    """(environment, labels) of every distinct alert the rule files can raise."""
    cases: dict[tuple[str, str, str], dict[str, str]] = {}
    for environment in alerts_gen.deployed_environments():
        document = yaml.safe_load(alerts_gen.rules_file(SPEC, environment).read_text())
        scope = alerts_gen.Scope.of(environment)
        for group in document["groups"]:
            for rule in group["rules"]:
                if "alert" not in rule:
                    continue
                labels = {"alertname": rule["alert"], **{k: str(v) for k, v in rule["labels"].items()}}
                labels["namespace"] = scope.namespace or PREVIEW
                cases[(environment, rule["alert"], labels["severity"])] = labels
    return [(environment, labels) for (environment, _, _), labels in sorted(cases.items())]


@pytest.mark.parametrize(("environment", "labels"), _every_generated_alert(), ids=lambda v: str(v))
def test_only_production_criticals_page(environment: str, labels: dict[str, str]) -> None:
    receiver = route(labels)
    pages = environment == "prod" and labels["severity"] == "critical"
    assert (receiver == "pager") == pages, f"{labels} -> {receiver}"
    if environment in {"dev", "preview"}:
        assert receiver == "blackhole"


def test_route_test_detects_a_wrong_receiver() -> None:
    result = routes_test(
        {"service": SERVICE, "severity": "warning", "environment": "prod", "namespace": PROD},
        "--verify.receivers=pager",
    )
    assert result.returncode != 0


def test_config_names_only_real_alerts() -> None:
    text = CONFIG.read_text()
    names = set(alerts_gen.alert_names(SPEC))
    mentioned_names = set(re.findall(rf"\b{PREFIX}\w+", text))
    assert mentioned_names, "the example should route and inhibit by alert name"
    for mentioned in sorted(mentioned_names):
        assert mentioned in names, f"{mentioned} is not an alert of alerts/generated/rules*.yaml"
    assert "namespace=" not in text.split("inhibit_rules:")[0], "route on environment, not namespace names"


def test_every_inhibition_stays_within_one_environment_and_namespace() -> None:
    for rule in AM["inhibit_rules"]:
        assert {"environment", "namespace"} <= set(rule["equal"]), rule


def test_warnings_are_inhibited_by_criticals_of_the_same_alert() -> None:
    rule = AM["inhibit_rules"][0]
    assert 'severity="critical"' in rule["source_matchers"]
    assert 'severity="warning"' in rule["target_matchers"]
    assert set(rule["equal"]) == {"environment", "namespace", "alertname"}


def test_the_pager_payload_carries_severity_and_environment() -> None:
    [pager] = [r for r in AM["receivers"] if r["name"] == "pager"]
    config = pager["pagerduty_configs"][0]
    assert "severity" in config and "CommonLabels.severity" in config["severity"]
    assert config["details"]["environment"] == "{{ .CommonLabels.environment }}"
