"""Grafana dashboards as code (grafana-foundation-sdk), rendered to dashboards/<uid>.json.

The boards are data, one module each under kit/dashboards/: RED overview ("is it us, and
where": the synthetic probe's user-side view, then rate, errors, duration and the latency SLI
per class), SLOs (SLI vs the recorded objective of each environment, budget remaining, burn
rates, 30-day burndown) and saturation (replicas, CPU against requests/limits and throttling,
event-loop lag, DB pool use and wait, outbox worker). This module renders them with the shared
variables, links and deploy annotations. Every panel has an explicit id and a stable *anchor*;
alerts link to ``/d/<uid>?viewPanel=<id>`` through ``panel_links``, so an alert's
``dashboard_url`` always opens a panel that exists.

Conventions (checked by tests/dashboards): variables ``datasource``, ``namespace`` and
``job``; every selector has a ``job`` matcher; ``$__rate_interval`` in range functions;
a unit and a description on every panel; thresholds come from alerts/slo.yaml.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from typing import Any

# The SDK warns at import that the v1 dashboard schema has a v2 successor. v1 JSON is what
# file provisioning and the kube-prometheus-stack sidecar load today, so it is the one we write.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from grafana_foundation_sdk.builders import common as common_builder
    from grafana_foundation_sdk.builders import dashboard as board
    from grafana_foundation_sdk.builders import prometheus, stat, timeseries
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models import common
    from grafana_foundation_sdk.models import dashboard as model

from kit.dashboards import red, saturation, slos
from kit.dashboards.model import Board, Panel, Steps
from kit.paths import DASHBOARDS
from kit.promql import matcher
from kit.slo import SloSpec

DASHBOARDS_DIR = DASHBOARDS
DATASOURCE = common.DataSourceRef(type_val="prometheus", uid="${datasource}")
BOARDS: tuple[Callable[[SloSpec, str], Board], ...] = (red.board, slos.board, saturation.board)


def _target(expr: str, legend: str, ref: str) -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(DATASOURCE)


def _thresholds(steps: Steps) -> board.ThresholdsConfig:
    return (
        board.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value, color) for value, color in steps])
    )


def _timeseries(panel: Panel) -> timeseries.Panel:
    built = (
        timeseries.Panel()
        .legend(
            common_builder.VizLegendOptions()
            .show_legend(True)
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .calcs(["lastNotNull", "max"])
        )
        .tooltip(
            common_builder.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
    )
    if panel.minimum is not None:
        built = built.min(panel.minimum)
    if panel.time_from is not None:
        built = built.time_from(panel.time_from)
    if panel.mappings is not None:
        built = built.mappings(
            [
                model.ValueMap(
                    options={
                        str(value): model.ValueMappingResult(text=text, color=color, index=index)
                        for index, (value, (text, color)) in enumerate(sorted(panel.mappings.items()))
                    }
                )
            ]
        )
    if panel.thresholds is not None:
        built = built.thresholds(_thresholds(panel.thresholds)).thresholds_style(
            common_builder.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED)
        )
    return built


def _stat(panel: Panel) -> stat.Panel:
    assert panel.thresholds is not None  # Panel refuses a stat without them
    return (
        stat.Panel()
        .decimals(3)
        .thresholds(_thresholds(panel.thresholds))
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .reduce_options(common_builder.ReduceDataOptions().calcs(["lastNotNull"]))
    )


def _panel(panel: Panel) -> timeseries.Panel | stat.Panel:
    built = _stat(panel) if panel.kind == "stat" else _timeseries(panel)
    built = (
        built.id(panel.id)
        .title(panel.title)
        .description(panel.description)
        .unit(panel.unit)
        .datasource(DATASOURCE)
        .height(8)
        .span(panel.width)
    )
    for index, (expr, legend) in enumerate(panel.targets):
        built = built.with_target(_target(expr, legend, chr(ord("A") + index)))
    return built


def _query_variable(name: str, query: str) -> board.QueryVariable:
    """A multi-value variable over label values, "All" matching everything, reloaded with the range."""
    return (
        board.QueryVariable(name)
        .label(name.capitalize())
        .datasource(DATASOURCE)
        .query(query)
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".+")
    )


def _deploy_annotation(spec: SloSpec) -> board.AnnotationQuery:
    """Deploy markers: a Deployment's spec changed (new ReplicaSet: image, config, secret hash)."""
    sel = spec.selectors
    return (
        board.AnnotationQuery()
        .name("Deploys")
        .datasource(DATASOURCE)
        .enable(True)
        .icon_color("purple")
        .expr(
            f'changes(kube_deployment_status_observed_generation{{job="{sel.kube_state_metrics_job}", '
            f'namespace=~"$namespace", deployment=~"{sel.deployment_regex}"}}[2m]) > 0'
        )
        .title_format("Deploy {{deployment}}")
        .text_format("{{namespace}}/{{deployment}}: new generation rolled out")
        .tag_keys("namespace,deployment")
        .step("1m")
    )


def build(spec: SloSpec, b: Board) -> board.Dashboard:
    """The Grafana dashboard of one board: its rows and panels under the shared variables and links."""
    service_jobs = matcher("job", [spec.selectors.api_job, spec.selectors.worker_job])
    dashboard = (
        board.Dashboard(b.title)
        .uid(b.uid)
        .description(b.description)
        .tags([spec.service.name, "generated"])
        .refresh("30s")
        .time(b.time_from, "now")
        .timezone("utc")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .readonly()
        .annotation(_deploy_annotation(spec))
        .link(
            board.DashboardLink("Service dashboards")
            .type(model.DashboardLinkType.DASHBOARDS)
            .tags([spec.service.name])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
        .with_variable(board.DatasourceVariable("datasource").label("Data source").type("prometheus"))
        .with_variable(_query_variable("namespace", f"label_values(up{{{service_jobs}}}, namespace)"))
        .with_variable(
            _query_variable("job", f'label_values(up{{{service_jobs}, namespace=~"$namespace"}}, job)')
        )
    )
    for row in b.rows:
        dashboard = dashboard.with_row(board.Row(row.title).id(row.id))
        for panel in row.panels:
            dashboard = dashboard.with_panel(_panel(panel))
    return dashboard


def concrete_query(expr: str, rate_interval: str = "5m", namespace: str = ".+", job: str = ".+") -> str:
    """A panel query with Grafana's macros and variables filled in, ready for Prometheus."""
    return (
        expr.replace("$__rate_interval", rate_interval).replace("$namespace", namespace).replace("$job", job)
    )


def queries(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expr) of every target of a rendered dashboard."""
    return [
        (panel["title"], target["expr"])
        for panel in document["panels"]
        for target in panel.get("targets", [])
    ]


def build_boards(spec: SloSpec, environment: str) -> list[Board]:
    return [make(spec, environment) for make in BOARDS]


def to_json(spec: SloSpec, b: Board) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(json.dumps(build(spec, b).build(), cls=JSONEncoder))
    return document


def render_dashboards(spec: SloSpec, environment: str) -> dict[str, dict[str, Any]]:
    return {b.uid: to_json(spec, b) for b in build_boards(spec, environment)}


def panel_links(spec: SloSpec, environment: str) -> dict[str, tuple[str, int]]:
    """Panel anchor -> (dashboard uid, panel id), for alerts' dashboard_url."""
    return {
        anchor: (b.uid, pid) for b in build_boards(spec, environment) for anchor, pid in b.anchors.items()
    }
