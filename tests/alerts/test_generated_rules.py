"""The committed rule file: fresh, valid for promtool, and every alert fully annotated."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from kit import alerts_gen, generate, slo
from kit.paths import DASHBOARDS, ROOT, RUNBOOKS
from kit.promql import selector_uses

SPEC = slo.load()
RULES: dict[str, Any] = yaml.safe_load(alerts_gen.RULES_FILE.read_text())
ALL_RULES = [rule for group in RULES["groups"] for rule in group["rules"]]
ALERTS = [rule for rule in ALL_RULES if "alert" in rule]
RECORDS = [rule for rule in ALL_RULES if "record" in rule]
# Series the service does not own: their jobs come from the spec's selectors too.
ALLOWED_JOBS = {
    SPEC.selectors.api_job,
    SPEC.selectors.worker_job,
    SPEC.selectors.kube_state_metrics_job,
    SPEC.selectors.cert_manager_job,
    f"{SPEC.selectors.api_job}|{SPEC.selectors.worker_job}",
}


def test_committed_outputs_match_the_spec() -> None:
    stale = generate.stale_outputs(generate.render_all(SPEC))
    assert stale == [], f"run `make generate`: {[str(p.relative_to(ROOT)) for p in stale]}"


def test_check_mode_of_the_cli_agrees() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kit.generate", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, "")


def test_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    outputs = generate.render_all(SPEC, out=tmp_path)
    for path, text in outputs.items():
        path.write_text(text)
    tampered = tmp_path / "rules.yaml"
    tampered.write_text(tampered.read_text().replace("14.4", "14.5"))
    assert generate.stale_outputs(outputs) == [tampered]


def test_promtool_accepts_the_rule_file() -> None:
    result = subprocess.run(
        ["promtool", "check", "rules", str(alerts_gen.RULES_FILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALL_RULES)} rules found" in result.stdout


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.get("alert") or r["record"])
def test_every_expression_parses_and_selects_by_job(rule: dict[str, Any]) -> None:
    uses = selector_uses(rule["expr"])
    assert uses or rule["expr"] == "vector(1)", "the walker found no selector"
    for use in uses:
        if ":" in use.name:
            continue  # a recording rule's output, already scoped by job
        assert use.matchers.get("job") in ALLOWED_JOBS, f"{use} has no job matcher from the spec"


@pytest.mark.parametrize("alert", ALERTS, ids=lambda a: f"{a['alert']}-{a['labels']['severity']}")
def test_every_alert_is_labelled_and_annotated(alert: dict[str, Any]) -> None:
    name = alert["alert"]
    assert name.startswith(SPEC.service.alert_prefix)
    assert alert["labels"]["severity"] in {"critical", "warning", "none"}
    annotations = alert["annotations"]
    assert set(annotations) == {"summary", "description", "runbook_url", "dashboard_url"}
    assert "{{" not in annotations["summary"], "summary must be static (it groups notifications)"
    if alert["labels"]["severity"] != "none":  # the Watchdog has nothing to report but itself
        assert "{{" in annotations["description"], "description must say which namespace/pod/value"
        assert "for" in alert, "symptom and cause alerts wait with a for: to ride out blips"


@pytest.mark.parametrize("alert", ALERTS, ids=lambda a: f"{a['alert']}-{a['labels']['severity']}")
def test_runbook_url_points_at_an_existing_runbook(alert: dict[str, Any]) -> None:
    url = alert["annotations"]["runbook_url"]
    assert url == f"{SPEC.service.runbook_base_url}/{alert['alert']}.md"
    assert (RUNBOOKS / f"{alert['alert']}.md").is_file()


def _panel_ids(uid: str) -> set[int]:
    document = json.loads((DASHBOARDS / f"{uid}.json").read_text())
    return {panel["id"] for panel in document["panels"] if panel["type"] != "row"}


@pytest.mark.parametrize("alert", ALERTS, ids=lambda a: f"{a['alert']}-{a['labels']['severity']}")
def test_dashboard_url_opens_an_existing_panel(alert: dict[str, Any]) -> None:
    url = urlparse(alert["annotations"]["dashboard_url"].replace("{{ $labels.namespace }}", "ns"))
    assert f"{url.scheme}://{url.netloc}" == SPEC.service.grafana_base_url
    uid = re.fullmatch(r"/d/([\w-]+)", url.path)
    assert uid, url.path
    query = parse_qs(url.query)
    assert int(query["viewPanel"][0]) in _panel_ids(uid.group(1))


def test_burn_rate_alerts_follow_the_window_policy() -> None:
    objectives = SPEC.objectives()
    for slo_name, objective in (
        ("availability", objectives.availability_objective),
        ("latency", objectives.latency_objective),
    ):
        rules = [a for a in ALERTS if a["labels"].get("slo") == slo_name]
        assert len(rules) == len(SPEC.burn_rate_windows)
        for rule, window in zip(rules, SPEC.burn_rate_windows, strict=True):
            threshold = f"{window.burn_rate * (1 - objective):.10g}"
            long_name = slo.format_duration(window.long_seconds)
            short_name = slo.format_duration(window.short_seconds)
            assert rule["labels"]["severity"] == window.severity
            assert (rule["labels"]["long_window"], rule["labels"]["short_window"]) == (long_name, short_name)
            assert f'slo:sli_error:ratio_rate{long_name}{{slo="{slo_name}"}} > {threshold}' in rule["expr"]
            assert f'slo:sli_error:ratio_rate{short_name}{{slo="{slo_name}"}} > {threshold}' in rule["expr"]
            # low-traffic guard
            assert f"slo:sli_requests:rate{long_name} > {objectives.low_traffic_min_rps:g}" in rule["expr"]
            assert rule["for"] == slo.format_duration(window.for_seconds)


def test_recording_rules_cover_every_window_the_alerts_use() -> None:
    recorded = {rule["record"] for rule in RECORDS}
    for alert in ALERTS:
        for name in re.findall(r"\b(slo:[a-z_]+:[a-z_0-9]+)\b", alert["expr"]):
            assert name in recorded, f"{alert['alert']} uses {name}, which no rule records"


def test_shortened_windows_keep_rule_names_and_scale_durations(tmp_path: Path) -> None:
    options = alerts_gen.RenderOptions(
        SPEC.alerting_environment, window_scale=1 / 60, evaluation_interval="1s"
    )
    scaled = alerts_gen.rules_document(SPEC, options)
    scaled_rules = [rule for group in scaled["groups"] for rule in group["rules"]]
    assert [r.get("record") or r.get("alert") for r in scaled_rules] == [
        r.get("record") or r.get("alert") for r in ALL_RULES
    ]
    assert all(group["interval"] == "1s" for group in scaled["groups"])
    requests_1h = next(r for r in scaled_rules if r.get("record") == "slo:sli_requests:rate1h")
    assert "[1m]" in requests_1h["expr"] and "[1h]" not in requests_1h["expr"]
    page = next(r for r in scaled_rules if r.get("alert", "").endswith("AvailabilityBudgetBurn"))
    assert page["for"] == "2s"
    path = tmp_path / "rules.yaml"
    path.write_text(alerts_gen.render_rules_yaml(SPEC, options))
    assert (
        subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, check=False).returncode
        == 0
    )
