"""A Python port of grafana/dashboard-linter's rules (the linter ships only as a prebuilt binary)
plus the kit's own conventions, over the committed dashboards/*.json."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kit import dashboards_gen, slo
from kit.dashboards.model import Board, Panel, Row
from kit.paths import DASHBOARDS
from kit.promql import selector_uses

SPEC = slo.load()
FILES = sorted(DASHBOARDS.glob("*.json"))
DOCUMENTS = {path.stem: json.loads(path.read_text()) for path in FILES}
# Fixed uids: bookmarks and every alert's dashboard_url depend on them.
EXPECTED_UIDS = {"reference-service-red", "reference-service-slo", "reference-service-saturation"}
DATASOURCE_UID = "${datasource}"
RATE_SENTINEL_SECONDS = 4321  # $__rate_interval is substituted with this, then recognised
RANGE_FUNCTIONS = {"rate", "irate", "increase"}
COUNTER_SUFFIXES = ("_total", "_bucket", "_count", "_sum")
# Infrastructure series are selected by their fixed job from the spec, not by $job.
INFRA_JOBS = {
    SPEC.selectors.kube_state_metrics_job,
    SPEC.selectors.cert_manager_job,
    SPEC.selectors.cadvisor_job,
    SPEC.selectors.synthetic_job,  # the probe pushes under its own job, which $job does not list
}
# https://github.com/grafana/grafana/blob/main/packages/grafana-data/src/valueFormats/categories.ts
KNOWN_UNITS = {"reqps", "ops", "s", "ms", "percentunit", "percent", "bytes", "short", "none", "x"}

PANELS = [
    (uid, panel)
    for uid, document in DOCUMENTS.items()
    for panel in document["panels"]
    if panel["type"] != "row"
]
TARGETS = [(uid, panel, target) for uid, panel in PANELS for target in panel.get("targets", [])]


def _ids(items: list[Any]) -> list[str]:
    return [f"{item[0]}:{item[1]['title']}" for item in items]


def test_dashboards_have_fixed_uids_matching_their_files() -> None:
    assert set(DOCUMENTS) == EXPECTED_UIDS
    for stem, document in DOCUMENTS.items():
        assert document["uid"] == stem
        assert len(document["uid"]) <= 40
        assert document["title"] and document["description"]


@pytest.mark.parametrize("uid", sorted(EXPECTED_UIDS))
def test_template_variables(uid: str) -> None:
    variables = {v["name"]: v for v in DOCUMENTS[uid]["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert [v["type"] for v in variables.values()].count("datasource") == 1
    for name in ("namespace", "job"):
        variable = variables[name]
        assert variable["type"] == "query"
        assert variable["datasource"]["uid"] == DATASOURCE_UID
        assert variable["multi"] and variable["includeAll"] and variable["allValue"] == ".+"
        assert variable["refresh"] == 2, "reload on time range change"
        selector_uses(variable["query"].replace("label_values(", "").rsplit(",", 1)[0])


@pytest.mark.parametrize("uid", sorted(EXPECTED_UIDS))
def test_dashboard_is_read_only_and_links_its_siblings(uid: str) -> None:
    document = DOCUMENTS[uid]
    assert document["editable"] is False, "generated: edit the Python, not the UI"
    assert any(
        link["type"] == "dashboards" and SPEC.service.name in link["tags"] for link in document["links"]
    )


@pytest.mark.parametrize("uid", sorted(EXPECTED_UIDS))
def test_panel_ids_are_unique(uid: str) -> None:
    ids = [panel["id"] for panel in DOCUMENTS[uid]["panels"]]
    assert len(ids) == len(set(ids))
    assert all(isinstance(i, int) and i > 0 for i in ids)


@pytest.mark.parametrize(("uid", "panel"), PANELS, ids=_ids(PANELS))
def test_panel_has_title_description_unit_datasource_and_targets(uid: str, panel: dict[str, Any]) -> None:
    assert panel["title"].strip()
    assert len(panel.get("description", "")) >= 20, "say what the panel shows and how to read it"
    assert panel["fieldConfig"]["defaults"].get("unit") in KNOWN_UNITS
    assert panel["datasource"]["uid"] == DATASOURCE_UID
    assert panel["targets"], "panel-no-targets"
    ref_ids = [t["refId"] for t in panel["targets"]]
    assert len(ref_ids) == len(set(ref_ids))
    for target in panel["targets"]:
        assert target["datasource"]["uid"] == DATASOURCE_UID
    if panel["type"] == "timeseries":
        assert panel["options"]["legend"]["showLegend"] is True


def check_target(target: dict[str, Any]) -> None:
    """One query against the linter's PromQL rules and the kit's selector conventions."""
    expr = dashboards_gen.concrete_query(target["expr"], rate_interval=f"{RATE_SENTINEL_SECONDS}s")
    uses = selector_uses(expr)  # target-promql: raises when it does not parse
    assert uses
    raw_uses = target["expr"]
    for use in uses:
        if use.function in RANGE_FUNCTIONS or use.range_seconds is not None:
            assert use.range_seconds == RATE_SENTINEL_SECONDS, f"{use.name}: use $__rate_interval"
        if use.name.endswith(COUNTER_SUFFIXES):
            assert use.function in RANGE_FUNCTIONS, f"{use.name}: a counter needs rate()/increase()"
        if use.matchers.get("job") == SPEC.selectors.cert_manager_job:
            continue  # certificates live in the shared Gateway's namespace, named per environment
        assert use.matchers.get("namespace") == ".+" and 'namespace=~"$namespace"' in raw_uses
        job = use.matchers.get("job")
        assert job == ".+" or job in INFRA_JOBS, f'{use.name}: select job=~"$job" (or an infra job)'


@pytest.mark.parametrize(("uid", "panel", "target"), TARGETS, ids=_ids(TARGETS))
def test_target_promql(uid: str, panel: dict[str, Any], target: dict[str, Any]) -> None:
    check_target(target)


def _panel(uid: str, anchor: str) -> dict[str, Any]:
    panel_id = dashboards_gen.panel_links(SPEC, SPEC.alerting_environment)[anchor][1]
    return next(p for p in DOCUMENTS[uid]["panels"] if p["id"] == panel_id)


def _threshold_values(panel: dict[str, Any]) -> list[float]:
    return [
        s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"] if s["value"] is not None
    ]


def test_objectives_are_read_from_recorded_series_not_written_in() -> None:
    """Each environment has its own objectives: panels read slo:objective:ratio, never a constant."""
    slo_uid = "reference-service-slo"
    constants = {
        str(SPEC.objectives(env).objective(s))
        for env in SPEC.environments
        for s in ("availability", "latency")
    }
    for panel in DOCUMENTS[slo_uid]["panels"]:
        for target in panel.get("targets", []):
            assert not any(c in target["expr"] for c in constants), f"{panel['title']}: {target['expr']}"
    for slo_name in ("availability", "latency", "synthetic"):
        for anchor in (
            f"slo-{slo_name}-sli",
            f"slo-{slo_name}-sli-vs-objective",
            f"slo-{slo_name}-burn-rate",
        ):
            exprs = [t["expr"] for t in _panel(slo_uid, anchor)["targets"]]
            assert any("slo:objective:ratio{" in e and f'slo="{slo_name}"' in e for e in exprs), anchor
    burndown = _panel(slo_uid, "slo-availability-burndown")
    assert burndown["timeFrom"] == "30d"
    assert "slo:error_budget_remaining:ratio" in burndown["targets"][0]["expr"]
    assert DOCUMENTS[slo_uid]["time"]["from"] == "now-7d"


def test_thresholds_come_from_the_spec() -> None:
    objectives = SPEC.objectives()
    slo_uid = "reference-service-slo"
    burn = _threshold_values(_panel(slo_uid, "slo-availability-burn-rate"))
    assert burn == sorted({w.burn_rate for w in SPEC.burn_rate_windows})
    assert _threshold_values(_panel(slo_uid, "slo-requests")) == [objectives.low_traffic_min_rps]
    sat = "reference-service-saturation"
    assert _threshold_values(_panel(sat, "saturation-db-pool")) == [SPEC.thresholds.db_pool_saturation_ratio]
    assert _threshold_values(_panel(sat, "saturation-certificate-expiry")) == [
        SPEC.thresholds.certificate_expiry_critical_days * 86400,
        SPEC.thresholds.certificate_expiry_days * 86400,
    ]
    assert _threshold_values(_panel(sat, "saturation-outbox-poll")) == [
        SPEC.thresholds.outbox_poll_stale_seconds
    ]
    red = "reference-service-red"
    assert _threshold_values(_panel(red, "red-error-ratio-by-route")) == [SPEC.thresholds.high_5xx_ratio]


def test_the_latency_sli_per_class_replaces_the_quantile_panels() -> None:
    red = "reference-service-red"
    titles = [p["title"] for p in DOCUMENTS[red]["panels"]]
    assert not any(t.startswith(("Latency p50", "Latency p95")) for t in titles)
    exprs = [t["expr"] for t in _panel(red, "red-class-slow-share")["targets"]]
    assert exprs[0].startswith("endpoint_class:http_slow:ratio_rate5m{")
    assert "slo:objective:ratio{" in exprs[1] and 'slo="latency"' in exprs[1]


def test_the_service_signals_the_review_asked_for_have_panels() -> None:
    """D1, D2, D5: user side, deploys, CPU against requests/limits, throttling, loop lag, pool wait."""
    red, sat = DOCUMENTS["reference-service-red"], DOCUMENTS["reference-service-saturation"]
    every_expr = " ".join(
        t["expr"] for d in DOCUMENTS.values() for p in d["panels"] for t in p.get("targets", [])
    )
    for metric in (
        "synthetic_journey_success",
        "container_cpu_cfs_throttled_periods_total",
        "kube_pod_container_resource_requests{",
        "event_loop_lag_seconds_bucket",
        "db_pool_checkout_wait_seconds_bucket",
        "outbox_last_poll_success_timestamp_seconds",
        "kube_deployment_spec_replicas",
    ):
        assert metric in every_expr, metric
    for document in DOCUMENTS.values():
        [deploys] = document["annotations"]["list"]
        assert "kube_deployment_status_observed_generation" in deploys["expr"]
    breaker = next(p for p in sat["panels"] if p["title"] == "Circuit breaker state")
    [mapping] = breaker["fieldConfig"]["defaults"]["mappings"]
    assert {k: v["text"] for k, v in mapping["options"].items()} == {
        "0": "closed",
        "1": "half-open",
        "2": "open",
    }
    ready = _panel("reference-service-saturation", "saturation-pods-ready")
    assert [t["legendFormat"].split()[0] for t in ready["targets"]] == ["ready", "desired"]
    assert red["panels"][0]["title"] == "User side (synthetic probe)"


def test_panel_anchor_ids_are_stable() -> None:
    """Renumbering panels breaks links in runbooks, alerts and bookmarks: make it a conscious change."""
    links = dashboards_gen.panel_links(SPEC, SPEC.alerting_environment)
    assert links["slo-availability-burn-rate"] == ("reference-service-slo", 5)
    assert links["red-error-ratio-by-route"] == ("reference-service-red", 5)
    assert links["saturation-targets-up"] == ("reference-service-saturation", 2)
    assert links["red-class-slow-share"] == ("reference-service-red", 12)
    assert links["red-latency-p99"] == ("reference-service-red", 10)
    assert links["saturation-outbox-poll"] == ("reference-service-saturation", 22)


def test_lint_catches_a_broken_dashboard() -> None:
    """The checks above are not vacuous: a hand-broken query fails them."""
    broken = json.loads(FILES[0].read_text())
    target = next(
        t for p in broken["panels"] for t in p.get("targets", []) if "$__rate_interval" in t["expr"]
    )
    target["expr"] = target["expr"].replace("$__rate_interval", "5m")
    with pytest.raises(AssertionError, match="use \\$__rate_interval"):
        check_target(target)
    with pytest.raises(ValueError):  # noqa: PT011 - promql_parser raises a bare ValueError
        selector_uses("sum(rate(http_requests_total[5m])")


def test_a_board_refuses_a_reused_panel_id_or_anchor() -> None:
    """Ids and anchors are links (alerts, runbooks, bookmarks): one may never stand for two panels."""

    def panel(panel_id: int, anchor: str) -> Panel:
        return Panel(panel_id, anchor, "t", "a description", "short", [("up", "{{job}}")])

    with pytest.raises(ValueError, match=r"duplicate panel ids \[2\] on b"):
        Board("b", "B", "d", [Row(1, "r", [panel(2, "x")]), Row(2, "s", [])])
    with pytest.raises(ValueError, match="duplicate panel anchor 'x' on b"):
        Board("b", "B", "d", [Row(1, "r", [panel(2, "x"), panel(3, "x")])])
    with pytest.raises(ValueError, match="stat panel 'y' needs thresholds"):
        Panel(4, "y", "t", "a description", "short", [("up", "")], kind="stat")
