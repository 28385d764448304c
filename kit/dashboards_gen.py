"""Grafana dashboards as code (grafana-foundation-sdk), rendered to dashboards/<uid>.json.

Three boards with fixed uids: RED overview ("is it us, and where"), SLO (SLI vs
objective, budget remaining, burn rates) and saturation (pods, DB pool, outbox worker).
Every panel has a stable *anchor*; alerts link to ``/d/<uid>?viewPanel=<id>`` through
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
    CLASS_P95,
    CLASS_REQUESTS,
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
    """Collects rows and panels, assigning each a stable id and recording its anchor."""

    uid: str
    title: str
    description: str
    builder: board.Dashboard
    anchors: dict[str, int] = field(default_factory=dict)
    next_id: int = 1

    def row(self, title: str) -> None:
        self.builder.with_row(board.Row(title).id(self._take_id()))

    def panel(self, anchor: str, panel: PanelBuilder) -> None:
        if anchor in self.anchors:
            raise ValueError(f"duplicate panel anchor {anchor!r} on {self.uid}")
        self.anchors[anchor] = self._take_id()
        self.builder.with_panel(panel.id(self.anchors[anchor]))

    def _take_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1


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
) -> timeseries.Panel:
    """A time series panel; ``targets`` are (expr, legend) pairs."""
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
    if thresholds is not None:
        panel = panel.thresholds(thresholds).thresholds_style(
            common_builder.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED)
        )
    for index, (expr, legend) in enumerate(targets):
        panel = panel.with_target(_target(expr, legend, chr(ord("A") + index)))
    return panel


def single_stat(
    title: str, description: str, unit: str, expr: str, thresholds: board.ThresholdsConfig, *, width: int = 6
) -> stat.Panel:
    return (
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
        .with_target(_target(expr, "{{namespace}}", "A"))
    )


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


def red_overview(spec: SloSpec, environment: str) -> Board:
    objectives = spec.objectives(environment)
    b = _new_board(
        spec,
        f"{spec.service.name}-red",
        f"{spec.service.name} / RED overview",
        "Rate, errors and duration of the API per route: is it us, and where?",
    )
    by_route = "method, route"
    total = f"sum by ({by_route}) (rate(http_requests_total{{{SCOPE}}}[{RATE}]))"
    errors = f'sum by ({by_route}) (rate(http_requests_total{{{SCOPE}, status=~"5.."}}[{RATE}]))'
    b.row("Rate")
    b.panel(
        "red-request-rate",
        graph(
            "Request rate by route",
            "Requests per second per method and route template (unmatched paths are one series).",
            "reqps",
            [(total, "{{method}} {{route}}")],
        ),
    )
    b.panel(
        "red-in-flight",
        graph(
            "In-flight requests",
            "Requests being served right now, per method: a rising line with a flat rate means requests "
            "queue up.",
            "short",
            [(f"sum by (method) (http_requests_in_progress{{{SCOPE}}})", "{{method}}")],
        ),
    )
    b.row("Errors")
    b.panel(
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
        "red-responses-by-status",
        graph(
            "Responses by status",
            "Responses per second by HTTP status: 4xx are client mistakes (or rate limiting, 429), 5xx "
            "are ours.",
            "reqps",
            [(f"sum by (status) (rate(http_requests_total{{{SCOPE}}}[{RATE}]))", "{{status}}")],
        ),
    )
    b.row("Duration")
    for quantile in (0.5, 0.95, 0.99):
        label = f"p{round(quantile * 100)}"
        b.panel(
            f"red-latency-{label}",
            graph(
                f"Latency {label} by route",
                f"{label} of request duration per route from the histogram (bucket resolution; "
                "interpolated within a bucket).",
                "s",
                [
                    (
                        f"histogram_quantile({quantile}, sum by (le, {by_route}) "
                        f"(rate(http_request_duration_seconds_bucket{{{SCOPE}}}[{RATE}])))",
                        "{{method}} {{route}}",
                    )
                ],
                width=8,
            ),
        )
    b.row("Endpoint classes")
    b.panel(
        "red-class-p95-vs-target",
        graph(
            "p95 per endpoint class / target",
            "p95 latency of each endpoint class (5m) divided by its p95 target from alerts/slo.yaml: above 1 "
            "(dashed line) the class misses the target the load-test gate enforces.",
            "percentunit",
            [
                (
                    f'{CLASS_P95}{{{SCOPE}, endpoint_class="{name}"}} / {number(targets.p95_ms / 1000)}',
                    f"{{{{endpoint_class}}}} (target {targets.p95_ms:g} ms)",
                )
                for name, targets in objectives.classes.items()
            ],
            thresholds=_thresholds((None, "green"), (1, "red")),
        ),
    )
    b.panel(
        "red-class-request-rate",
        graph(
            "Request rate per endpoint class",
            "Requests per second per endpoint class (5m rate), to compare with the throughput the "
            "service must "
            "sustain (alerts/slo.yaml min_throughput_rps).",
            "reqps",
            [(f"{CLASS_REQUESTS}{{{SCOPE}}}", "{{endpoint_class}}")],
        ),
    )
    b.panel(
        "red-class-error-ratio",
        graph(
            "5xx ratio per endpoint class",
            "Share of 5xx per endpoint class (5m).",
            "percentunit",
            [(f"{CLASS_ERROR_RATIO}{{{SCOPE}}}", "{{endpoint_class}}")],
        ),
    )
    return b


def slo_board(spec: SloSpec, environment: str) -> Board:
    objectives = spec.objectives(environment)
    b = _new_board(
        spec,
        f"{spec.service.name}-slo",
        f"{spec.service.name} / SLOs",
        f"SLIs against the objectives of alerts/slo.yaml ({environment}), error budget and burn rates.",
    )
    period = window_name(spec.period_seconds)
    windows = sorted(
        {w.long_seconds for w in spec.burn_rate_windows} | {w.short_seconds for w in spec.burn_rate_windows}
    )
    burn_rates = sorted({w.burn_rate for w in spec.burn_rate_windows})
    for slo in SLOS:
        objective = (
            objectives.availability_objective if slo == "availability" else objectives.latency_objective
        )
        budget = 1 - objective

        def sli(window: str, slo: str = slo) -> str:
            return f'{SLI_ERROR_RATIO.format(window=window)}{{{SCOPE}, slo="{slo}"}}'

        what = (
            "share of SLO requests not answered 5xx"
            if slo == "availability"
            else "share of non-5xx SLO requests faster than their class threshold"
        )
        b.row(f"{slo.capitalize()} SLO ({number(objective * 100)}%)")
        b.panel(
            f"slo-{slo}-sli",
            single_stat(
                f"{slo.capitalize()} over {period}",
                f"SLI over the SLO period: {what}. Red below the objective ({number(objective * 100)}%).",
                "percentunit",
                f"1 - {sli(period)}",
                _thresholds((None, "red"), (objective, "green")),
            ),
        )
        b.panel(
            f"slo-{slo}-budget",
            single_stat(
                "Error budget remaining",
                f"Share of the {period} error budget ({number(budget * 100)}% of requests) still unspent; "
                "below 0 the SLO is breached.",
                "percentunit",
                f'{BUDGET_REMAINING}{{{SCOPE}, slo="{slo}"}}',
                _thresholds((None, "red"), (0, "orange"), (0.25, "green")),
            ),
        )
        b.panel(
            f"slo-{slo}-sli-vs-objective",
            graph(
                "SLI (1h) vs objective",
                f"The {what} over a sliding hour; the dashed line is the objective.",
                "percentunit",
                [(f"1 - {sli('1h')}", "{{namespace}}")],
                thresholds=_thresholds((None, "red"), (objective, "green")),
                minimum=None,
            ),
        )
        b.panel(
            f"slo-{slo}-burn-rate",
            graph(
                "Burn rate per window",
                "Error ratio divided by the error budget (1 = spending exactly the budget over the period). "
                f"Dashed lines: the alert burn rates {', '.join(number(r) for r in burn_rates)}; a page "
                "needs both "
                "windows of a pair above its line.",
                "x",
                [(f"{sli(window_name(w))} / {number(budget)}", window_name(w)) for w in windows],
                width=24,
                thresholds=_thresholds(
                    (None, "green"),
                    *[
                        (r, c)
                        for r, c in zip(burn_rates, ("yellow", "orange", "red", "dark-red"), strict=False)
                    ],
                ),
            ),
        )
    b.row("Traffic in the SLO")
    b.panel(
        "slo-requests",
        graph(
            "SLO request rate",
            "Requests per second counted by the SLIs (health probes excluded). Below the dashed "
            "low-traffic guard "
            "the burn-rate alerts stay silent.",
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
    hpa = f'{ksm_scope}, horizontalpodautoscaler="{sel.hpa_name}"'
    b = _new_board(
        spec,
        f"{spec.service.name}-saturation",
        f"{spec.service.name} / Saturation",
        "Resources and queues: pods, CPU, memory, database pool, outbox worker, certificates.",
    )
    b.row("Pods")
    b.panel(
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
        "saturation-pods-ready",
        graph(
            "Ready pods",
            "Pods passing their readiness probe (kube-state-metrics): not-ready pods receive no traffic.",
            "short",
            [(f'sum by (pod) (kube_pod_status_ready{{{ksm}, condition="true"}})', "{{pod}}")],
            width=8,
        ),
    )
    b.panel(
        "saturation-restarts",
        graph(
            "Container restarts",
            "Container restarts per pod in each interval: steady restarts are a crash loop (OOM kill, "
            "failing "
            "start-up, failing liveness probe).",
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
        "saturation-cpu",
        graph(
            "CPU per process",
            "CPU seconds per second used by each API and worker process (1 = one core).",
            "short",
            [
                (
                    f"sum by (job, instance) (rate(process_cpu_seconds_total{{{SCOPE}}}[{RATE}]))",
                    "{{job}} {{instance}}",
                )
            ],
            width=8,
        ),
    )
    b.panel(
        "saturation-memory",
        graph(
            "Memory per process vs limit",
            "Resident memory of each process, and the containers' memory limit (kube-state-metrics): "
            "near the "
            "limit the kernel OOM-kills the container.",
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
    b.row("Database and abuse protection")
    b.panel(
        "saturation-db-pool",
        graph(
            "DB pool in use",
            "Connections checked out of each API process's pool divided by the pool's maximum; the "
            "dashed line "
            "is the DbPoolSaturated threshold.",
            "percentunit",
            [
                (
                    f"max by (instance) (db_pool_connections_in_use{{{SCOPE}}} / "
                    f"db_pool_connections_max{{{SCOPE}}})",
                    "{{instance}}",
                )
            ],
            thresholds=_thresholds((None, "green"), (t.db_pool_saturation_ratio, "red")),
        ),
    )
    b.panel(
        "saturation-rate-limited",
        graph(
            "Rate-limited requests",
            "Requests refused with 429 per route class, and errors of the rate-limit storage (Redis) "
            "that made "
            "the limiter fail open.",
            "reqps",
            [
                (
                    f"sum by (route_class) (rate(rate_limit_rejections_total{{{SCOPE}}}[{RATE}]))",
                    "rejected {{route_class}}",
                ),
                (f"sum(rate(rate_limit_storage_errors_total{{{SCOPE}}}[{RATE}]))", "storage errors"),
            ],
        ),
    )
    b.row("Outbox worker")
    b.panel(
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
        "saturation-outbox-age",
        graph(
            "Oldest pending event age",
            "Age of the oldest undelivered outbox event; the dashed line is the OutboxBacklogAging "
            "threshold.",
            "s",
            [(f"max by (job) (outbox_oldest_pending_age_seconds{{{SCOPE}}})", "{{job}}")],
            width=8,
            thresholds=_thresholds((None, "green"), (t.outbox_oldest_pending_age_seconds, "red")),
        ),
    )
    b.panel(
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
        "saturation-circuit-breaker",
        graph(
            "Circuit breaker state",
            "0 closed (calls flow), 1 half-open (probing), 2 open (calls refused), per breaker and worker.",
            "none",
            [(f"max by (name, instance) (circuit_breaker_state{{{SCOPE}}})", "{{name}} {{instance}}")],
            width=8,
            thresholds=_thresholds((None, "green"), (1, "orange"), (2, "red")),
        ),
    )
    b.panel(
        "saturation-certificate-expiry",
        graph(
            "Certificate time to expiry",
            "Time left before each TLS certificate of the service expires (cert-manager); the dashed "
            "line is the "
            "CertificateExpiringSoon threshold.",
            "s",
            [
                (
                    "min by (name) "
                    f'(certmanager_certificate_expiration_timestamp_seconds{{job="{sel.cert_manager_job}", '
                    f'namespace=~"$namespace", name=~"{sel.certificate_regex}"}}) - time()',
                    "{{name}}",
                )
            ],
            width=8,
            thresholds=_thresholds((None, "red"), (t.certificate_expiry_days * 86400, "green")),
        ),
    )
    # Last, so the panel ids that alert links point at stay as they were.
    b.panel(
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
