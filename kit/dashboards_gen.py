"""Grafana dashboards as code (grafana-foundation-sdk), rendered to dashboards/<uid>.json.

Three boards with fixed uids: RED overview ("is it us, and where": the synthetic probe's
user-side view, then rate, errors, duration and the latency SLI per class), SLO (SLI vs the
recorded objective of each environment, budget remaining, burn rates, 30-day burndown) and
saturation (replicas, CPU against requests/limits and throttling, event-loop lag, DB pool
use and wait, outbox worker). Deploys are annotated on every board. Every panel has an
explicit id and a stable *anchor*; alerts link to ``/d/<uid>?viewPanel=<id>`` through
``panel_links``, so an alert's ``dashboard_url`` always opens a panel that exists.

Conventions (checked by tests/dashboards): variables ``datasource``, ``namespace`` and
``job``; every selector has a ``job`` matcher; ``$__rate_interval`` in range functions;
a unit and a description on every panel; thresholds come from alerts/slo.yaml.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
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

from kit.paths import DASHBOARDS
from kit.promql import (
    BUDGET_REMAINING,
    CLASS_ERROR_RATIO,
    CLASS_REQUESTS,
    CLASS_SLOW_RATIO,
    OBJECTIVE,
    SLI_ERROR_RATIO,
    SLI_REQUESTS,
    SLOS,
    matcher,
    number,
    window_name,
)
from kit.slo import SloSpec

DASHBOARDS_DIR = DASHBOARDS
DATASOURCE = common.DataSourceRef(type_val="prometheus", uid="${datasource}")
RATE = "$__rate_interval"
SCOPE = 'namespace=~"$namespace", job=~"$job"'
PanelBuilder = timeseries.Panel | stat.Panel


@dataclass
class Board:
    """Collects rows and panels, each with an explicit id, and records every panel's anchor.

    Ids are written by hand and never reused: alert dashboard_urls and runbook links point at
    them, so adding, moving or removing a panel must not renumber the others.
    """

    uid: str
    title: str
    description: str
    builder: board.Dashboard
    anchors: dict[str, int] = field(default_factory=dict)
    ids: set[int] = field(default_factory=set)

    def row(self, panel_id: int, title: str) -> None:
        self.builder.with_row(board.Row(title).id(self._claim(panel_id)))

    def panel(self, panel_id: int, anchor: str, panel: PanelBuilder) -> None:
        if anchor in self.anchors:
            raise ValueError(f"duplicate panel anchor {anchor!r} on {self.uid}")
        self.anchors[anchor] = self._claim(panel_id)
        self.builder.with_panel(panel.id(panel_id))

    def _claim(self, panel_id: int) -> int:
        if panel_id in self.ids:
            raise ValueError(f"duplicate panel id {panel_id} on {self.uid}")
        self.ids.add(panel_id)
        return panel_id


def _target(expr: str, legend: str, ref: str) -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(DATASOURCE)


def _thresholds(*steps: tuple[float | None, str]) -> board.ThresholdsConfig:
    return (
        board.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value, color) for value, color in steps])
    )


def graph(
    title: str,
    description: str,
    unit: str,
    targets: list[tuple[str, str]],
    *,
    width: int = 12,
    thresholds: board.ThresholdsConfig | None = None,
    minimum: float | None = 0,
    time_from: str | None = None,
    mappings: dict[int, tuple[str, str]] | None = None,
) -> timeseries.Panel:
    """A time series panel; ``targets`` are (expr, legend) pairs; ``mappings`` value -> (text, color)."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(DATASOURCE)
        .height(8)
        .span(width)
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
    if minimum is not None:
        panel = panel.min(minimum)
    if time_from is not None:
        panel = panel.time_from(time_from)
    if mappings is not None:
        panel = panel.mappings(
            [
                model.ValueMap(
                    options={
                        str(value): model.ValueMappingResult(text=text, color=color, index=index)
                        for index, (value, (text, color)) in enumerate(sorted(mappings.items()))
                    }
                )
            ]
        )
    if thresholds is not None:
        panel = panel.thresholds(thresholds).thresholds_style(
            common_builder.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED)
        )
    for index, (expr, legend) in enumerate(targets):
        panel = panel.with_target(_target(expr, legend, chr(ord("A") + index)))
    return panel


def single_stat(
    title: str,
    description: str,
    unit: str,
    targets: list[tuple[str, str]],
    thresholds: board.ThresholdsConfig,
    *,
    width: int = 6,
) -> stat.Panel:
    """A stat panel; ``targets`` are (expr, legend) pairs."""
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .decimals(3)
        .datasource(DATASOURCE)
        .height(8)
        .span(width)
        .thresholds(thresholds)
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .reduce_options(common_builder.ReduceDataOptions().calcs(["lastNotNull"]))
    )
    for index, (expr, legend) in enumerate(targets):
        panel = panel.with_target(_target(expr, legend, chr(ord("A") + index)))
    return panel


def _new_board(spec: SloSpec, uid: str, title: str, description: str) -> Board:
    sel = spec.selectors
    service_jobs = matcher("job", [sel.api_job, sel.worker_job])
    builder = (
        board.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([spec.service.name, "generated"])
        .refresh("30s")
        .time("now-3h", "now")
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
        .with_variable(
            board.QueryVariable("namespace")
            .label("Namespace")
            .datasource(DATASOURCE)
            .query(f"label_values(up{{{service_jobs}}}, namespace)")
            .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(model.VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".+")
        )
        .with_variable(
            board.QueryVariable("job")
            .label("Job")
            .datasource(DATASOURCE)
            .query(f'label_values(up{{{service_jobs}, namespace=~"$namespace"}}, job)')
            .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(model.VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".+")
        )
    )
    return Board(uid, title, description, builder)


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


def _objective(spec: SloSpec, slo: str) -> str:
    """The objective per namespace, recorded by the rules from alerts/slo.yaml (no hard-coded number)."""
    return f'{OBJECTIVE}{{{_slo_scope(spec, slo)}, slo="{slo}"}}'


def _slo_scope(spec: SloSpec, slo: str) -> str:
    # The synthetic SLI's series belong to the probe's job, which the $job variable does not list.
    if slo == "synthetic":
        return f'namespace=~"$namespace", job="{spec.selectors.synthetic_job}"'
    return SCOPE


def red_overview(spec: SloSpec, environment: str) -> Board:
    del environment  # objectives come from recorded series, per namespace
    sel = spec.selectors
    b = _new_board(
        spec,
        f"{spec.service.name}-red",
        f"{spec.service.name} / RED overview",
        "The user's view first (synthetic probe), then rate, errors and duration of the API per route "
        "and endpoint class: is it us, and where?",
    )
    by_route = "method, route"
    total = f"sum by ({by_route}) (rate(http_requests_total{{{SCOPE}}}[{RATE}]))"
    errors = f'sum by ({by_route}) (rate(http_requests_total{{{SCOPE}, status=~"5.."}}[{RATE}]))'
    synthetic = f'namespace=~"$namespace", job="{sel.synthetic_job}"'
    b.row(15, "User side (synthetic probe)")
    b.panel(
        16,
        "red-synthetic-journey",
        graph(
            "Synthetic journey success",
            "1 when the probe's last whole /api journey succeeded from outside the pods, 0 when it failed: "
            "the user's view, which still shows an outage when no pod is ready and the app sees nothing.",
            "none",
            [(f"max by (namespace) (synthetic_journey_success{{{synthetic}}})", "{{namespace}}")],
            width=8,
            thresholds=_thresholds((None, "red"), (1, "green")),
        ),
    )
    b.panel(
        17,
        "red-synthetic-steps",
        graph(
            "Synthetic step success",
            "Success (1) or failure (0) of each step of the probe's journey: which step broke.",
            "none",
            [(f"max by (namespace, step) (synthetic_step_success{{{synthetic}}})", "{{namespace}} {{step}}")],
            width=8,
        ),
    )
    b.panel(
        18,
        "red-synthetic-duration",
        graph(
            "Synthetic journey duration",
            "Seconds the probe's whole journey took, as a user would wait for it.",
            "s",
            [(f"max by (namespace) (synthetic_journey_duration_seconds{{{synthetic}}})", "{{namespace}}")],
            width=8,
        ),
    )
    b.row(1, "Rate")
    b.panel(
        2,
        "red-request-rate",
        graph(
            "Request rate by route",
            "Requests per second per method and route template (unmatched paths are one series).",
            "reqps",
            [(total, "{{method}} {{route}}")],
        ),
    )
    b.panel(
        3,
        "red-in-flight",
        graph(
            "In-flight requests",
            "Requests being served right now, per method: a rising line with a flat rate means requests "
            "queue up.",
            "short",
            [(f"sum by (method) (http_requests_in_progress{{{SCOPE}}})", "{{method}}")],
        ),
    )
    b.row(4, "Errors")
    b.panel(
        5,
        "red-error-ratio-by-route",
        graph(
            "5xx ratio by route",
            "Share of requests answered 5xx per route. The dashed line is the High5xxRatio alert threshold; "
            "a single route far above the others points at its code path or dependency.",
            "percentunit",
            [(f"({errors} or {total} * 0)\n/\n{total}", "{{method}} {{route}}")],
            thresholds=_thresholds((None, "green"), (spec.thresholds.high_5xx_ratio, "red")),
        ),
    )
    b.panel(
        6,
        "red-responses-by-status",
        graph(
            "Responses by status",
            "Responses per second by HTTP status: 4xx are client mistakes (or rate limiting, 429), 5xx "
            "are ours.",
            "reqps",
            [(f"sum by (status) (rate(http_requests_total{{{SCOPE}}}[{RATE}]))", "{{status}}")],
        ),
    )
    by_instance_total = f"sum by (instance) (rate(http_requests_total{{{SCOPE}}}[{RATE}]))"
    by_instance_errors = f'sum by (instance) (rate(http_requests_total{{{SCOPE}, status=~"5.."}}[{RATE}]))'
    b.panel(
        19,
        "red-error-ratio-by-instance",
        graph(
            "5xx ratio by pod",
            "Share of requests answered 5xx per API pod (instance): one pod far above the others is a "
            "pod problem (its node, its connections), all pods alike is the code or a dependency.",
            "percentunit",
            [(f"({by_instance_errors} or {by_instance_total} * 0)\n/\n{by_instance_total}", "{{instance}}")],
            width=24,
        ),
    )
    b.row(7, "Duration")
    b.panel(
        10,
        "red-latency-p99",
        graph(
            "Latency p99 by route",
            "p99 of request duration per route from the histogram (bucket resolution; interpolated within "
            "a bucket): where to look once the SLI per class says a class is slow.",
            "s",
            [
                (
                    f"histogram_quantile(0.99, sum by (le, {by_route}) "
                    f"(rate(http_request_duration_seconds_bucket{{{SCOPE}}}[{RATE}])))",
                    "{{method}} {{route}}",
                )
            ],
            width=24,
        ),
    )
    b.row(11, "Endpoint classes (the SLIs per class)")
    budget = f'1 - {OBJECTIVE}{{{SCOPE}, slo="latency"}}'
    b.panel(
        12,
        "red-class-slow-share",
        graph(
            "Share over the latency threshold per class",
            "The latency SLI per endpoint class: share of its non-5xx requests slower than the class's "
            "threshold (alerts/slo.yaml: "
            + ", ".join(f"{c.name} {c.latency_threshold_ms} ms" for c in spec.slo_classes)
            + "), over 5m. The budget line is 1 - the environment's latency objective (recorded): a class "
            "above it burns the latency budget.",
            "percentunit",
            [
                (f"{CLASS_SLOW_RATIO}{{{SCOPE}}}", "{{endpoint_class}}"),
                (budget, "budget {{namespace}}"),
            ],
        ),
    )
    b.panel(
        13,
        "red-class-request-rate",
        graph(
            "Request rate per endpoint class",
            "Requests per second per endpoint class (5m rate), to compare with the throughput the "
            "service must sustain (alerts/slo.yaml min_throughput_rps).",
            "reqps",
            [(f"{CLASS_REQUESTS}{{{SCOPE}}}", "{{endpoint_class}}")],
        ),
    )
    b.panel(
        14,
        "red-class-error-ratio",
        graph(
            "5xx ratio per endpoint class",
            "Share of 5xx per endpoint class (5m).",
            "percentunit",
            [(f"{CLASS_ERROR_RATIO}{{{SCOPE}}}", "{{endpoint_class}}")],
        ),
    )
    return b


# Panel ids of the SLO board: (row, SLI stat, budget stat, SLI vs objective, burn rate, burndown).
_SLO_PANEL_IDS = {
    "availability": (1, 2, 3, 4, 5, 13),
    "latency": (6, 7, 8, 9, 10, 14),
    "synthetic": (15, 16, 17, 18, 19, 20),
}


def slo_board(spec: SloSpec, environment: str) -> Board:
    objectives = spec.objectives(environment)
    b = _new_board(
        spec,
        f"{spec.service.name}-slo",
        f"{spec.service.name} / SLOs",
        "SLIs against each environment's objectives (recorded from alerts/slo.yaml), error budget, "
        "burn rates and the budget burndown.",
    )
    b.builder.time("now-7d", "now")
    period = window_name(spec.period_seconds)
    windows = sorted(
        {w.long_seconds for w in spec.burn_rate_windows} | {w.short_seconds for w in spec.burn_rate_windows}
    )
    burn_rates = sorted({w.burn_rate for w in spec.burn_rate_windows})
    whats = {
        "availability": "share of SLO requests not answered 5xx",
        "latency": "share of non-5xx SLO requests faster than their class threshold",
        "synthetic": "share of time the synthetic probe's whole journey succeeds (the user's side)",
    }
    for slo in SLOS:
        row, sli_id, budget_id, vs_id, burn_id, burndown_id = _SLO_PANEL_IDS[slo]
        scope = _slo_scope(spec, slo)
        objective = _objective(spec, slo)

        def sli(window: str, slo: str = slo, scope: str = scope) -> str:
            return f'{SLI_ERROR_RATIO.format(window=window)}{{{scope}, slo="{slo}"}}'

        b.row(row, f"{slo.capitalize()} SLO")
        b.panel(
            sli_id,
            f"slo-{slo}-sli",
            single_stat(
                f"{slo.capitalize()} over {period}",
                f"SLI over the SLO period ({whats[slo]}), and the namespace's objective as recorded by the "
                "rules (each environment has its own).",
                "percentunit",
                [(f"1 - {sli(period)}", "SLI {{namespace}}"), (objective, "objective {{namespace}}")],
                _thresholds((None, "blue")),
            ),
        )
        b.panel(
            budget_id,
            f"slo-{slo}-budget",
            single_stat(
                "Error budget remaining",
                f"Share of the {period} error budget still unspent, against the environment's own "
                "objective; below 0 the SLO is breached.",
                "percentunit",
                [(f'{BUDGET_REMAINING}{{{scope}, slo="{slo}"}}', "{{namespace}}")],
                _thresholds((None, "red"), (0, "orange"), (0.25, "green")),
            ),
        )
        b.panel(
            vs_id,
            f"slo-{slo}-sli-vs-objective",
            graph(
                "SLI (1h) vs objective",
                f"The {whats[slo]} over a sliding hour, and the recorded objective of the namespace.",
                "percentunit",
                [(f"1 - {sli('1h')}", "SLI {{namespace}}"), (objective, "objective {{namespace}}")],
                minimum=None,
            ),
        )
        b.panel(
            burn_id,
            f"slo-{slo}-burn-rate",
            graph(
                "Burn rate per window",
                "Error ratio divided by the namespace's error budget (1 = spending exactly the budget "
                "over the period). Dashed lines: the alert burn rates "
                f"{', '.join(number(r) for r in burn_rates)}; a page needs both windows of a pair above "
                "its line.",
                "x",
                [
                    (
                        f"{sli(window_name(w))}\n/ on (namespace, job, slo)\n(1 - {objective})",
                        f"{window_name(w)} {{{{namespace}}}}",
                    )
                    for w in windows
                ],
                width=12,
                thresholds=_thresholds(
                    (None, "green"),
                    *[
                        (r, c)
                        for r, c in zip(burn_rates, ("yellow", "orange", "red", "dark-red"), strict=False)
                    ],
                ),
            ),
        )
        b.panel(
            burndown_id,
            f"slo-{slo}-burndown",
            graph(
                f"Error budget burndown ({period})",
                f"Budget remaining over the last {period} (the rolling SLO period): a steady slope is "
                "normal spending, a cliff is an incident; at 0 the SLO is breached.",
                "percentunit",
                [(f'{BUDGET_REMAINING}{{{scope}, slo="{slo}"}}', "{{namespace}}")],
                width=12,
                minimum=None,
                thresholds=_thresholds((None, "red"), (0, "green")),
                time_from=period,
            ),
        )
    b.row(11, "Traffic in the SLO")
    b.panel(
        12,
        "slo-requests",
        graph(
            "SLO request rate",
            "Requests per second counted by the SLIs (health probes excluded). Below the dashed "
            "low-traffic guard the burn-rate alerts stay silent.",
            "reqps",
            [(f"{SLI_REQUESTS.format(window='5m')}{{{SCOPE}}}", "{{namespace}}")],
            width=24,
            thresholds=_thresholds((None, "orange"), (objectives.low_traffic_min_rps, "green")),
        ),
    )
    return b


def saturation_board(spec: SloSpec, environment: str) -> Board:
    del environment  # thresholds here are service-wide
    sel, t = spec.selectors, spec.thresholds
    ksm_scope = f'job="{sel.kube_state_metrics_job}", namespace=~"$namespace"'
    ksm = f'{ksm_scope}, pod=~"{sel.pod_regex}"'
    deployments = f'{ksm_scope}, deployment=~"{sel.deployment_regex}"'
    cadvisor = f'job="{sel.cadvisor_job}", namespace=~"$namespace", pod=~"{sel.pod_regex}", container!=""'
    hpa = f'{ksm_scope}, horizontalpodautoscaler="{sel.hpa_name}"'
    b = _new_board(
        spec,
        f"{spec.service.name}-saturation",
        f"{spec.service.name} / Saturation",
        "Resources and queues: pods, CPU, memory, event loop, database pool, outbox worker, certificates.",
    )
    b.row(1, "Pods")
    b.panel(
        2,
        "saturation-targets-up",
        graph(
            "Scrape targets up",
            "Targets Prometheus scrapes successfully, per job. 0 for the API means the SLO alerts are blind.",
            "short",
            [(f"sum by (job) (up{{{SCOPE}}})", "{{job}}")],
            width=8,
        ),
    )
    b.panel(
        3,
        "saturation-pods-ready",
        graph(
            "Ready vs desired replicas",
            "Available (ready) replicas of each Deployment against the replicas it wants "
            "(kube-state-metrics). Available 0 with desired > 0 is an outage at the edge "
            "(ApiNoAvailableReplicas); available below desired for long is a stuck rollout or pods "
            "that cannot get ready.",
            "short",
            [
                (
                    f"max by (deployment) (kube_deployment_status_replicas_available{{{deployments}}})",
                    "ready {{deployment}}",
                ),
                (
                    f"max by (deployment) (kube_deployment_spec_replicas{{{deployments}}})",
                    "desired {{deployment}}",
                ),
            ],
            width=8,
        ),
    )
    b.panel(
        4,
        "saturation-restarts",
        graph(
            "Container restarts",
            "Container restarts per pod in each interval: steady restarts are a crash loop (OOM kill, "
            "failing start-up, failing liveness probe).",
            "short",
            [
                (
                    "sum by (pod, container) "
                    f"(increase(kube_pod_container_status_restarts_total{{{ksm}}}[{RATE}]))",
                    "{{pod}}/{{container}}",
                )
            ],
            width=8,
        ),
    )
    b.panel(
        5,
        "saturation-cpu",
        graph(
            "CPU per pod vs request and limit",
            "CPU cores used by each pod's containers (cAdvisor), with the containers' CPU request and limit "
            "(kube-state-metrics): the HPA's utilisation is usage / request; at the limit the kernel "
            "throttles the container.",
            "short",
            [
                (
                    f"sum by (pod) (rate(container_cpu_usage_seconds_total{{{cadvisor}}}[{RATE}]))",
                    "used {{pod}}",
                ),
                (
                    f'max by (container) (kube_pod_container_resource_requests{{{ksm}, resource="cpu"}})',
                    "request {{container}}",
                ),
                (
                    f'max by (container) (kube_pod_container_resource_limits{{{ksm}, resource="cpu"}})',
                    "limit {{container}}",
                ),
            ],
            width=8,
        ),
    )
    b.panel(
        19,
        "saturation-cpu-throttling",
        graph(
            "CPU throttling",
            "Share of CFS periods in which each pod's containers were throttled at their CPU limit: "
            "above a few percent, latency suffers before CPU usage looks high.",
            "percentunit",
            [
                (
                    "sum by (pod) (rate(container_cpu_cfs_throttled_periods_total"
                    f"{{{cadvisor}}}[{RATE}]))\n/\n"
                    f"sum by (pod) (rate(container_cpu_cfs_periods_total{{{cadvisor}}}[{RATE}]))",
                    "{{pod}}",
                )
            ],
            width=8,
        ),
    )
    b.panel(
        6,
        "saturation-memory",
        graph(
            "Memory per process vs limit",
            "Resident memory of each process, and the containers' memory limit (kube-state-metrics): "
            "near the limit the kernel OOM-kills the container.",
            "bytes",
            [
                (
                    f"sum by (job, instance) (process_resident_memory_bytes{{{SCOPE}}})",
                    "{{job}} {{instance}}",
                ),
                (
                    f'max by (container) (kube_pod_container_resource_limits{{{ksm}, resource="memory"}})',
                    "limit {{container}}",
                ),
            ],
            width=8,
        ),
    )
    b.panel(
        20,
        "saturation-event-loop-lag",
        graph(
            "Event-loop lag",
            "How late the API's event loop runs a timer (p99 and max over the interval, per pod): one "
            "process serves every request, so lag is added to every request's latency; sustained lag "
            "means CPU-bound work or a blocking call on the loop.",
            "s",
            [
                (
                    "histogram_quantile(0.99, sum by (le, instance) "
                    f"(rate(event_loop_lag_seconds_bucket{{{SCOPE}}}[{RATE}])))",
                    "p99 {{instance}}",
                ),
            ],
            width=8,
        ),
    )
    b.panel(
        7,
        "saturation-hpa-replicas",
        graph(
            "Autoscaler replicas",
            "Current, desired and maximum replicas of the API autoscaler: current = max means scaling "
            "is exhausted.",
            "short",
            [
                (f"max(kube_horizontalpodautoscaler_status_current_replicas{{{hpa}}})", "current"),
                (f"max(kube_horizontalpodautoscaler_status_desired_replicas{{{hpa}}})", "desired"),
                (f"max(kube_horizontalpodautoscaler_spec_max_replicas{{{hpa}}})", "max"),
            ],
            width=8,
        ),
    )
    b.row(8, "Database and abuse protection")
    b.panel(
        9,
        "saturation-db-pool",
        graph(
            "DB pool in use",
            "Connections checked out of each API process's pool divided by the pool's maximum; the "
            "dashed line is the DbPoolSaturated threshold.",
            "percentunit",
            [
                (
                    f"max by (instance) (db_pool_connections_in_use{{{SCOPE}}} / "
                    f"db_pool_connections_max{{{SCOPE}}})",
                    "{{instance}}",
                )
            ],
            width=8,
            thresholds=_thresholds((None, "green"), (t.db_pool_saturation_ratio, "red")),
        ),
    )
    b.panel(
        21,
        "saturation-db-pool-wait",
        graph(
            "DB pool wait time",
            "How long units of work wait for a pooled database connection (p99 per pod): waiting is "
            "the first sign of a saturated pool, before DB_POOL_TIMEOUT_SECONDS turns it into 500s.",
            "s",
            [
                (
                    "histogram_quantile(0.99, sum by (le, instance) "
                    f"(rate(db_pool_checkout_wait_seconds_bucket{{{SCOPE}}}[{RATE}])))",
                    "p99 {{instance}}",
                )
            ],
            width=8,
        ),
    )
    b.panel(
        10,
        "saturation-rate-limited",
        graph(
            "Rate-limited requests",
            "Requests refused with 429 per route class, and errors of the rate-limit storage (Redis) "
            "that made the limiter fall back to per-process counting (RateLimitStorageFailing).",
            "reqps",
            [
                (
                    f"sum by (route_class) (rate(rate_limit_rejections_total{{{SCOPE}}}[{RATE}]))",
                    "rejected {{route_class}}",
                ),
                (f"sum(rate(rate_limit_storage_errors_total{{{SCOPE}}}[{RATE}]))", "storage errors"),
            ],
            width=8,
        ),
    )
    b.row(11, "Outbox worker")
    b.panel(
        12,
        "saturation-outbox-pending",
        graph(
            "Outbox events pending",
            "Events waiting for delivery (queue depth).",
            "short",
            [(f"max by (job) (outbox_events_pending{{{SCOPE}}})", "{{job}}")],
            width=8,
        ),
    )
    b.panel(
        13,
        "saturation-outbox-age",
        graph(
            "Oldest pending event age",
            "Age of the oldest undelivered outbox event; the dashed line is the OutboxBacklogAging "
            "threshold. Frozen while polls fail: read it with the poll panel.",
            "s",
            [(f"max by (job) (outbox_oldest_pending_age_seconds{{{SCOPE}}})", "{{job}}")],
            width=8,
            thresholds=_thresholds((None, "green"), (t.outbox_oldest_pending_age_seconds, "red")),
        ),
    )
    b.panel(
        22,
        "saturation-outbox-poll",
        graph(
            "Time since the last successful poll",
            "Seconds since each worker last polled the outbox successfully (the dashed line is the "
            "OutboxPollStale threshold), and failed polls per second.",
            "s",
            [
                (
                    f"time() - max by (instance) (outbox_last_poll_success_timestamp_seconds{{{SCOPE}}})",
                    "since success {{instance}}",
                ),
                (
                    f"sum by (instance) (rate(outbox_poll_failures_total{{{SCOPE}}}[{RATE}]))",
                    "failures/s {{instance}}",
                ),
            ],
            width=8,
            thresholds=_thresholds((None, "green"), (t.outbox_poll_stale_seconds, "red")),
        ),
    )
    b.panel(
        14,
        "saturation-worker-throughput",
        graph(
            "Worker deliveries by outcome",
            "Webhook deliveries per second: delivered, retried (will try again) and dead_lettered (gave up).",
            "ops",
            [(f"sum by (outcome) (rate(outbox_deliveries_total{{{SCOPE}}}[{RATE}]))", "{{outcome}}")],
            width=8,
        ),
    )
    b.panel(
        15,
        "saturation-outbox-dead-lettered",
        graph(
            "Dead-lettered events",
            "Events that exhausted their retries and wait for an operator (replay or discard).",
            "short",
            [(f"max by (job) (outbox_events_dead_lettered{{{SCOPE}}})", "{{job}}")],
            width=8,
            thresholds=_thresholds((None, "green"), (1, "red")),
        ),
    )
    b.panel(
        16,
        "saturation-circuit-breaker",
        graph(
            "Circuit breaker state",
            "State per breaker and worker: closed (calls flow), half-open (probing), open (calls refused).",
            "none",
            [(f"max by (name, instance) (circuit_breaker_state{{{SCOPE}}})", "{{name}} {{instance}}")],
            width=8,
            thresholds=_thresholds((None, "green"), (1, "orange"), (2, "red")),
            mappings={0: ("closed", "green"), 1: ("half-open", "orange"), 2: ("open", "red")},
        ),
    )
    b.panel(
        17,
        "saturation-certificate-expiry",
        graph(
            "Certificate time to expiry",
            "Time left before each environment's TLS certificate expires (cert-manager; they live in "
            "the shared Gateway's namespace, one per environment host); the dashed lines are the "
            "CertificateExpiringSoon warning and critical thresholds.",
            "s",
            [
                (
                    "min by (name) "
                    f'(certmanager_certificate_expiration_timestamp_seconds{{job="{sel.cert_manager_job}", '
                    f'name=~"{sel.certificate_name.format(environment=".+")}"}}) - time()',
                    "{{name}}",
                )
            ],
            width=8,
            thresholds=_thresholds(
                (None, "red"),
                (t.certificate_expiry_critical_days * 86400, "orange"),
                (t.certificate_expiry_days * 86400, "green"),
            ),
        ),
    )
    b.panel(
        18,
        "saturation-idempotency-sweep",
        graph(
            "Expired idempotency keys swept",
            "Rows per second the worker's periodic sweep deletes (IDEMPOTENCY_SWEEP_INTERVAL_SECONDS); "
            "flat at zero while keys keep expiring means no replica sweeps.",
            "ops",
            [(f"sum by (job) (rate(idempotency_keys_swept_total{{{SCOPE}}}[{RATE}]))", "{{job}}")],
            width=8,
        ),
    )
    return b


BOARDS: tuple[Callable[[SloSpec, str], Board], ...] = (red_overview, slo_board, saturation_board)


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


def to_json(b: Board) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(json.dumps(b.builder.build(), cls=JSONEncoder))
    return document


def render_dashboards(spec: SloSpec, environment: str) -> dict[str, dict[str, Any]]:
    return {b.uid: to_json(b) for b in build_boards(spec, environment)}


def panel_links(spec: SloSpec, environment: str) -> dict[str, tuple[str, int]]:
    """Panel anchor -> (dashboard uid, panel id), for alerts' dashboard_url."""
    return {
        anchor: (b.uid, pid) for b in build_boards(spec, environment) for anchor, pid in b.anchors.items()
    }
