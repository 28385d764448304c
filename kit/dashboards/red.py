"""RED overview: the user's side first (synthetic probe), then rate, errors and duration of the
API per route and endpoint class: is it us, and where?"""

from __future__ import annotations

from kit.dashboards.model import RATE, SCOPE, Board, Panel, Row
from kit.promql import CLASS_ERROR_RATIO, CLASS_REQUESTS, CLASS_SLOW_RATIO, OBJECTIVE
from kit.slo import SloSpec


def board(spec: SloSpec, environment: str) -> Board:
    del environment  # objectives come from recorded series, per namespace
    by_route = "method, route"
    total = f"sum by ({by_route}) (rate(http_requests_total{{{SCOPE}}}[{RATE}]))"
    errors = f'sum by ({by_route}) (rate(http_requests_total{{{SCOPE}, status=~"5.."}}[{RATE}]))'
    by_pod_total = f"sum by (instance) (rate(http_requests_total{{{SCOPE}}}[{RATE}]))"
    by_pod_errors = f'sum by (instance) (rate(http_requests_total{{{SCOPE}, status=~"5.."}}[{RATE}]))'
    synthetic = f'namespace=~"$namespace", job="{spec.selectors.synthetic_job}"'
    thresholds = ", ".join(f"{c.name} {c.latency_threshold_ms} ms" for c in spec.slo_classes)
    user_side = Row(
        15,
        "User side (synthetic probe)",
        [
            Panel(
                16,
                "red-synthetic-journey",
                "Synthetic journey success",
                """1 when the probe's last whole /api journey succeeded from outside the pods, 0 when
                it failed: the user's view, which still shows an outage when no pod is ready and the
                app sees nothing.""",
                "none",
                [(f"max by (namespace) (synthetic_journey_success{{{synthetic}}})", "{{namespace}}")],
                width=8,
                thresholds=((None, "red"), (1, "green")),
            ),
            Panel(
                17,
                "red-synthetic-steps",
                "Synthetic step success",
                "Success (1) or failure (0) of each step of the probe's journey: which step broke.",
                "none",
                [
                    (
                        f"max by (namespace, step) (synthetic_step_success{{{synthetic}}})",
                        "{{namespace}} {{step}}",
                    )
                ],
                width=8,
            ),
            Panel(
                18,
                "red-synthetic-duration",
                "Synthetic journey duration",
                "Seconds the probe's whole journey took, as a user would wait for it.",
                "s",
                [
                    (
                        f"max by (namespace) (synthetic_journey_duration_seconds{{{synthetic}}})",
                        "{{namespace}}",
                    )
                ],
                width=8,
            ),
        ],
    )
    rate = Row(
        1,
        "Rate",
        [
            Panel(
                2,
                "red-request-rate",
                "Request rate by route",
                "Requests per second per method and route template (unmatched paths are one series).",
                "reqps",
                [(total, "{{method}} {{route}}")],
            ),
            Panel(
                3,
                "red-in-flight",
                "In-flight requests",
                """Requests being served right now, per method: a rising line with a flat rate means
                requests queue up.""",
                "short",
                [(f"sum by (method) (http_requests_in_progress{{{SCOPE}}})", "{{method}}")],
            ),
        ],
    )
    errors_row = Row(
        4,
        "Errors",
        [
            Panel(
                5,
                "red-error-ratio-by-route",
                "5xx ratio by route",
                """Share of requests answered 5xx per route. The dashed line is the High5xxRatio alert
                threshold; a single route far above the others points at its code path or
                dependency.""",
                "percentunit",
                [(f"({errors} or {total} * 0)\n/\n{total}", "{{method}} {{route}}")],
                thresholds=((None, "green"), (spec.thresholds.high_5xx_ratio, "red")),
            ),
            Panel(
                6,
                "red-responses-by-status",
                "Responses by status",
                """Responses per second by HTTP status: 4xx are client mistakes (or rate limiting,
                429), 5xx are ours.""",
                "reqps",
                [(f"sum by (status) (rate(http_requests_total{{{SCOPE}}}[{RATE}]))", "{{status}}")],
            ),
            Panel(
                19,
                "red-error-ratio-by-instance",
                "5xx ratio by pod",
                """Share of requests answered 5xx per API pod (instance): one pod far above the others
                is a pod problem (its node, its connections), all pods alike is the code or a
                dependency.""",
                "percentunit",
                [(f"({by_pod_errors} or {by_pod_total} * 0)\n/\n{by_pod_total}", "{{instance}}")],
                width=24,
            ),
        ],
    )
    duration = Row(
        7,
        "Duration",
        [
            Panel(
                10,
                "red-latency-p99",
                "Latency p99 by route",
                """p99 of request duration per route from the histogram (bucket resolution;
                interpolated within a bucket): where to look once the SLI per class says a class is
                slow.""",
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
        ],
    )
    classes = Row(
        11,
        "Endpoint classes (the SLIs per class)",
        [
            Panel(
                12,
                "red-class-slow-share",
                "Share over the latency threshold per class",
                f"""The latency SLI per endpoint class: share of its non-5xx requests slower than the
                class's threshold (alerts/slo.yaml: {thresholds}), over 5m. The budget line is 1 -
                the environment's latency objective (recorded): a class above it burns the latency
                budget.""",
                "percentunit",
                [
                    (f"{CLASS_SLOW_RATIO}{{{SCOPE}}}", "{{endpoint_class}}"),
                    (f'1 - {OBJECTIVE}{{{SCOPE}, slo="latency"}}', "budget {{namespace}}"),
                ],
            ),
            Panel(
                13,
                "red-class-request-rate",
                "Request rate per endpoint class",
                """Requests per second per endpoint class (5m rate), to compare with the throughput
                the service must sustain (alerts/slo.yaml min_throughput_rps).""",
                "reqps",
                [(f"{CLASS_REQUESTS}{{{SCOPE}}}", "{{endpoint_class}}")],
            ),
            Panel(
                14,
                "red-class-error-ratio",
                "5xx ratio per endpoint class",
                "Share of 5xx per endpoint class (5m).",
                "percentunit",
                [(f"{CLASS_ERROR_RATIO}{{{SCOPE}}}", "{{endpoint_class}}")],
            ),
        ],
    )
    return Board(
        f"{spec.service.name}-red",
        f"{spec.service.name} / RED overview",
        """The user's view first (synthetic probe), then rate, errors and duration of the API per
        route and endpoint class: is it us, and where?""",
        [user_side, rate, errors_row, duration, classes],
    )
