"""The committed rule files (one per deployed environment): fresh, valid for promtool, scoped to
their environment's namespace, every alert labelled and fully annotated."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from kit import alerts_gen, environments, generate, render, slo
from kit.paths import DASHBOARDS, ROOT, RUNBOOKS
from kit.promql import selector_uses
from testsupport.promtool import check_rules

SPEC = slo.load()
ENVIRONMENTS = alerts_gen.deployed_environments()
RULE_FILES: dict[str, dict[str, Any]] = {
    env: yaml.safe_load(alerts_gen.rules_file(SPEC, env).read_text()) for env in ENVIRONMENTS
}
RULES: dict[str, Any] = RULE_FILES[SPEC.alerting_environment]
ALL_RULES = [rule for group in RULES["groups"] for rule in group["rules"]]
ALERTS = [rule for rule in ALL_RULES if "alert" in rule]
RECORDS = [rule for rule in ALL_RULES if "record" in rule]
EVERY_RULE = [
    (env, rule)
    for env, document in RULE_FILES.items()
    for group in document["groups"]
    for rule in group["rules"]
]
EVERY_ALERT = [(env, rule) for env, rule in EVERY_RULE if "alert" in rule]
# Series the service does not own: their jobs come from the spec's selectors too.
ALLOWED_JOBS = {
    SPEC.selectors.api_job,
    SPEC.selectors.worker_job,
    SPEC.selectors.synthetic_job,
    SPEC.selectors.kube_state_metrics_job,
    SPEC.selectors.cert_manager_job,
    SPEC.selectors.prometheus_job,
    f"{SPEC.selectors.api_job}|{SPEC.selectors.worker_job}",
}


def _rule_id(item: tuple[str, dict[str, Any]]) -> str:
    env, rule = item
    return f"{env}-{rule.get('alert') or rule['record']}-{rule.get('labels', {}).get('severity', '')}"


def test_committed_outputs_match_the_spec() -> None:
    stale = render.stale_outputs(generate.render_all(SPEC))
    assert stale == [], f"run `make generate`: {[str(p.relative_to(ROOT)) for p in stale]}"


def test_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    outputs = generate.render_all(SPEC, out=tmp_path)
    for path, text in outputs.items():
        path.write_text(text)
    tampered = tmp_path / "rules.yaml"
    tampered.write_text(tampered.read_text().replace("14.4", "14.5"))
    assert render.stale_outputs(outputs) == [tampered]


def test_every_deployed_environment_has_a_rule_file_and_ci_has_none() -> None:
    assert set(ENVIRONMENTS) == {e.name for e in environments.load().environments.values() if not e.local}
    assert alerts_gen.rules_file(SPEC, SPEC.alerting_environment) == alerts_gen.RULES_FILE
    assert sorted(p.name for p in alerts_gen.GENERATED.glob("*.yaml")) == sorted(
        alerts_gen.rules_file(SPEC, env).name for env in ENVIRONMENTS
    )
    with pytest.raises(slo.SpecError, match="runs on loopback"):
        alerts_gen.rules_document(SPEC, alerts_gen.RenderOptions("ci"))


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_promtool_accepts_the_rule_file(environment: str) -> None:
    result = check_rules(alerts_gen.rules_file(SPEC, environment))
    assert result.returncode == 0, result.stdout + result.stderr
    count = sum(len(group["rules"]) for group in RULE_FILES[environment]["groups"])
    assert f"SUCCESS: {count} rules found" in result.stdout


def _namespace_matcher(environment: str) -> tuple[str, str]:
    """(op, value) every selector of the environment's rules must carry."""
    env = environments.load().get(environment)
    if env.namespace_template:
        head, _, tail = env.namespace_template.partition("{pr}")
        return "=~", f"{head}[0-9]+{tail}"
    assert env.namespace
    return "=", env.namespace


@pytest.mark.parametrize("item", EVERY_RULE, ids=_rule_id)
def test_every_selector_is_scoped_to_its_job_and_its_environment(item: tuple[str, dict[str, Any]]) -> None:
    environment, rule = item
    uses = selector_uses(rule["expr"])
    assert uses or rule["expr"] == "vector(1)", "the walker found no selector"
    op, namespace = _namespace_matcher(environment)
    if all(use.matchers.get("job") == SPEC.selectors.prometheus_job for use in uses):
        return  # the retention meta-check reads the Prometheus itself, in its own namespace
    if all(use.matchers.get("job") == SPEC.selectors.cert_manager_job for use in uses):
        # Certificates live in the shared Gateway's namespace: scoped by the environment's name.
        edge = environments.load().edge
        for use in uses:
            assert use.matchers["name"] == SPEC.selectors.certificate_name.format(environment=environment)
            assert use.matchers["namespace"] == (edge.gateway_namespace if edge else namespace)
        return
    for use in uses:
        # Recorded series too: another environment's records share the names.
        assert use.matchers.get("namespace") == namespace, f"{use} is not scoped to {environment}"
        assert f'namespace{op}"' in rule["expr"]
        if ":" in use.name:
            continue  # a recording rule's output, already scoped by job
        assert use.matchers.get("job") in ALLOWED_JOBS, f"{use} has no job matcher from the spec"


def test_a_preview_namespace_matches_the_preview_pattern_only() -> None:
    op, pattern = _namespace_matcher("preview")
    preview = environments.load().get("preview").for_pull_request(123).namespace
    assert op == "=~" and preview and re.fullmatch(pattern, preview)
    for other in ("dev", "staging", "prod"):
        assert not re.fullmatch(pattern, environments.load().get(other).namespace or "")


@pytest.mark.parametrize("item", EVERY_ALERT, ids=_rule_id)
def test_every_alert_carries_service_and_environment(item: tuple[str, dict[str, Any]]) -> None:
    environment, alert = item
    assert alert["labels"]["service"] == SPEC.service.name
    assert alert["labels"]["environment"] == environment


def test_the_preview_rule_set_never_pages() -> None:
    alerts = [rule for env, rule in EVERY_ALERT if env == "preview"]
    assert alerts and {a["labels"]["severity"] for a in alerts} == {"warning"}
    assert not any(a["alert"].endswith("Watchdog") for a in alerts), "the dev Watchdog covers that Prometheus"
    assert not any("absent(" in a["expr"] for a in alerts), "a preview that does not exist is no outage"


def test_dev_and_preview_alert_on_their_own_objectives() -> None:
    for environment in ("dev", "preview"):
        objectives = SPEC.objectives(environment)
        assert objectives.availability_objective != SPEC.objectives("prod").availability_objective
        page = next(
            rule
            for env, rule in EVERY_ALERT
            if env == environment and rule["labels"].get("slo") == "availability"
        )
        threshold = SPEC.burn_rate_windows[0].burn_rate * (1 - objectives.availability_objective)
        assert f"> {threshold:.10g}" in page["expr"]


def test_long_windows_are_rolled_up_from_recorded_5m_series_in_a_slower_group() -> None:
    for environment, document in RULE_FILES.items():
        groups = {
            group["name"].removeprefix(f"{SPEC.service.name}-{environment}-"): group
            for group in document["groups"]
        }
        rollups = groups["slo-rollups"]
        assert rollups["interval"] == slo.format_duration(SPEC.rollups.interval_seconds) == "2m30s"
        for rule in rollups["rules"]:
            for use in selector_uses(rule["expr"]):
                assert ":" in use.name or use.name == "kube_deployment_spec_replicas", f"{use}: read a record"
                if use.range_seconds is not None:
                    assert use.name.endswith("5m"), f"{use}: long windows average the 5m records"
        long_records = {r["record"] for r in rollups["rules"] if re.search(r"rate(1d|3d|30d)$", r["record"])}
        elsewhere = {
            rule.get("record", "")
            for group in document["groups"]
            if group is not rollups
            for rule in group["rules"]
        }
        assert not any(re.search(r"rate(1d|3d|30d)$", name) for name in elsewhere)
        assert {"slo:sli_requests:rate30d", "slo:sli_error:ratio_rate3d"} <= long_records
        # No rule reads more than a few hours of raw samples.
        for group in document["groups"]:
            for rule in group["rules"]:
                for use in selector_uses(rule["expr"]):
                    if use.range_seconds and ":" not in use.name:
                        assert use.range_seconds <= 6 * 3600, f"{rule.get('record') or rule['alert']}: {use}"


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
    ns = f'namespace="{environments.load().get(SPEC.alerting_environment).namespace}"'
    for slo_name in ("availability", "latency", "synthetic"):
        objective = objectives.objective(slo_name)
        rules = [a for a in ALERTS if a["labels"].get("slo") == slo_name]
        assert len(rules) == len(SPEC.burn_rate_windows)
        for rule, window in zip(rules, SPEC.burn_rate_windows, strict=True):
            threshold = f"{window.burn_rate * (1 - objective):.10g}"
            long_name = slo.format_duration(window.long_seconds)
            short_name = slo.format_duration(window.short_seconds)
            assert rule["labels"]["severity"] == window.severity
            assert (rule["labels"]["long_window"], rule["labels"]["short_window"]) == (long_name, short_name)
            assert f'ratio_rate{long_name}{{slo="{slo_name}", {ns}}} > {threshold}' in rule["expr"]
            assert f'ratio_rate{short_name}{{slo="{slo_name}", {ns}}} > {threshold}' in rule["expr"]
            # low-traffic guard, except for the probe: it must count when the app sees no traffic
            guard = f"slo:sli_requests:rate{long_name}{{{ns}}} > {objectives.low_traffic_min_rps:g}"
            assert (guard in rule["expr"]) == (slo_name != "synthetic")
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
    rolled = next(r for r in scaled_rules if r.get("record") == "slo:sli_requests:rate1d")
    assert "[24m]" in rolled["expr"]
    requests_1h = next(r for r in scaled_rules if r.get("record") == "slo:sli_requests:rate1h")
    assert "[1m]" in requests_1h["expr"] and "[1h]" not in requests_1h["expr"]
    page = next(r for r in scaled_rules if r.get("alert", "").endswith("AvailabilityBudgetBurn"))
    assert page["for"] == "2s"
    path = tmp_path / "rules.yaml"
    path.write_text(alerts_gen.render_rules_yaml(SPEC, options))
    result = check_rules(path)
    assert result.returncode == 0, result.stdout + result.stderr
