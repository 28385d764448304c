"""PromQL building blocks shared by the rule and dashboard generators.

Selectors, recording-rule names and SLI expressions live here once, so an alert, the
dashboard panel that explains it and the runbook query can never disagree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kit.slo import EndpointClass, SloSpec, format_duration

# Aggregation labels of every service-level series: one series per deployment.
BY = "namespace, job"

# Recording-rule names (level:metric:operations). The window suffix is the nominal
# window ("rate1h") even when the generator shortens windows for the end-to-end test.
SLI_REQUESTS = "slo:sli_requests:rate{window}"
SLI_ERRORS = "slo:sli_errors:rate{window}"
SLI_FAST = "slo:sli_fast:rate{window}"
SLI_ERROR_RATIO = "slo:sli_error:ratio_rate{window}"
BUDGET_REMAINING = "slo:error_budget_remaining:ratio"
CLASS_REQUESTS = "endpoint_class:http_requests:rate5m"
CLASS_ERROR_RATIO = "endpoint_class:http_errors:ratio_rate5m"
CLASS_P95 = "endpoint_class:http_request_duration_seconds:p95_rate5m"
# Share of requests of a class slower than its latency threshold (the latency SLI per class).
CLASS_SLOW_RATIO = "endpoint_class:http_slow:ratio_rate5m"
# The objective of each SLO, recorded per namespace so dashboards read it from data.
OBJECTIVE = "slo:objective:ratio"
SLOS = ("availability", "latency", "synthetic")

_RE2_SPECIAL = re.compile(r"([\\.+*?()|\[\]{}^$])")


def regex_alternation(values: Iterable[str]) -> str:
    """An anchored-by-PromQL RE2 alternation of literal values, escaped for a PromQL string."""
    return "|".join(_RE2_SPECIAL.sub(r"\\\\\1", value) for value in values)


def matcher(label: str, values: Iterable[str]) -> str:
    items = list(values)
    if len(items) == 1:
        return f'{label}="{items[0]}"'
    return f'{label}=~"{regex_alternation(items)}"'


def selector(*matchers: str) -> str:
    return "{" + ", ".join(m for m in matchers if m) + "}"


def window_name(seconds: int) -> str:
    return format_duration(seconds)


@dataclass(frozen=True)
class Queries:
    """Expressions over the service's metrics, parameterised by the job matchers in the spec.

    ``namespace`` is a matcher (``namespace="reference-service-prod"``) added to every selector,
    so the rules of one environment never read another's series; empty for no scoping.
    """

    spec: SloSpec
    namespace: str = ""

    def _scoped(self, matcher_text: str) -> str:
        return f"{matcher_text}, {self.namespace}" if self.namespace else matcher_text

    @property
    def api(self) -> str:
        return self._scoped(f'job="{self.spec.selectors.api_job}"')

    @property
    def worker(self) -> str:
        return self._scoped(f'job="{self.spec.selectors.worker_job}"')

    @property
    def synthetic(self) -> str:
        return self._scoped(f'job="{self.spec.selectors.synthetic_job}"')

    @property
    def kube_state(self) -> str:
        return self._scoped(f'job="{self.spec.selectors.kube_state_metrics_job}"')

    @property
    def cert_manager(self) -> str:
        return self._scoped(f'job="{self.spec.selectors.cert_manager_job}"')

    def recorded(self, name: str, **labels: str) -> str:
        """A recording rule's output, scoped like every other selector."""
        matchers = [f'{k}="{v}"' for k, v in labels.items()] + ([self.namespace] if self.namespace else [])
        return f"{name}{{{', '.join(matchers)}}}" if matchers else name

    @property
    def pods(self) -> str:
        return f'pod=~"{self.spec.selectors.pod_regex}"'

    def class_selectors(
        self, endpoint_class: EndpointClass, *extra: str, job: str | None = None
    ) -> list[str]:
        """One selector per (methods, routes) group of the class; their union is the class."""
        return [
            selector(job or self.api, matcher("method", methods), matcher("route", routes), *extra)
            for methods, routes in endpoint_class.selector_groups()
        ]

    def union_rate(self, metric: str, selectors: list[str], window: str) -> str:
        """sum by (namespace, job) of rate() over a union of disjoint selectors."""
        terms = "\n  or\n  ".join(f"rate({metric}{s}[{window}])" for s in selectors)
        return f"sum by ({BY}) (\n  {terms}\n)" if len(selectors) > 1 else f"sum by ({BY}) ({terms})"

    def slo_selectors(self, *extra: str, job: str | None = None) -> list[str]:
        return [s for c in self.spec.slo_classes for s in self.class_selectors(c, *extra, job=job)]

    # --- SLI building blocks (recorded per window; ratios are computed from the records) ---

    def sli_requests(self, window: str) -> str:
        """Rate of SLO requests (classes with in_slo), every status."""
        return self.union_rate("http_requests_total", self.slo_selectors(), window)

    def sli_errors(self, window: str, requests_record: str) -> str:
        """Rate of SLO requests answered 5xx; 0 (not absent) while there is traffic but no error."""
        errors = self.union_rate("http_requests_total", self.slo_selectors('status=~"5.."'), window)
        return f"{errors}\nor\n{requests_record} * 0"

    def sli_fast(self, window: str) -> str:
        """Rate of non-5xx SLO requests faster than their class's latency threshold."""
        selectors = [
            s
            for c in self.spec.slo_classes
            for s in self.class_selectors(
                c, 'status!~"5.."', f'le="{bucket_label(c.latency_threshold_seconds)}"'
            )
        ]
        return self.union_rate("http_request_duration_seconds_bucket", selectors, window)

    def class_requests(self, endpoint_class: EndpointClass, window: str, job: str | None = None) -> str:
        return self.union_rate("http_requests_total", self.class_selectors(endpoint_class, job=job), window)

    def class_error_ratio(self, endpoint_class: EndpointClass, window: str, job: str | None = None) -> str:
        errors = self.union_rate(
            "http_requests_total", self.class_selectors(endpoint_class, 'status=~"5.."', job=job), window
        )
        total = self.class_requests(endpoint_class, window, job)
        return f"({errors} or {total} * 0)\n/\n{total}"

    def class_slow_ratio(self, endpoint_class: EndpointClass, window: str) -> str:
        """Share of the class's non-5xx requests slower than its threshold (0 with traffic, none slow)."""
        ok = self.union_rate(
            "http_requests_total", self.class_selectors(endpoint_class, 'status!~"5.."'), window
        )
        fast = self.union_rate(
            "http_request_duration_seconds_bucket",
            self.class_selectors(
                endpoint_class,
                'status!~"5.."',
                f'le="{bucket_label(endpoint_class.latency_threshold_seconds)}"',
            ),
            window,
        )
        return f"1 - ({fast} or {ok} * 0)\n/\n{ok}"

    def class_quantile(
        self, quantile: float, endpoint_class: EndpointClass, window: str, job: str | None = None
    ) -> str:
        terms = " or ".join(
            f"rate(http_request_duration_seconds_bucket{s}[{window}])"
            for s in self.class_selectors(endpoint_class, job=job)
        )
        return f"histogram_quantile({quantile}, sum by ({BY}, le) ({terms}))"


def bucket_label(seconds: float) -> str:
    """The `le` label value prometheus_client renders for a bucket bound (1 -> "1.0")."""
    return repr(float(seconds))


def number(value: float) -> str:
    """A float rendered for PromQL/YAML without float noise (14.4 * 0.001 -> 0.0144)."""
    return f"{value:.10g}"


@dataclass(frozen=True)
class SelectorUse:
    """A series selector in a parsed expression, and the range function around it (if any)."""

    name: str
    matchers: dict[str, str]  # label -> value (as written, for = and =~)
    function: str | None  # e.g. "rate" when the selector is rate(x[...])'s argument
    range_seconds: float | None


def selector_uses(expr: str) -> list[SelectorUse]:
    """Every selector of ``expr`` (raises ValueError when it does not parse)."""
    import promql_parser  # ops group: only the checks need it, not the generators

    uses: list[SelectorUse] = []

    def record(selector: Any, function: str | None, range_seconds: float | None) -> None:
        matchers = {m.name: m.value for m in selector.matchers.matchers}
        uses.append(SelectorUse(selector.name or "", matchers, function, range_seconds))

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            record(node, None, None)
            return
        if isinstance(node, promql_parser.MatrixSelector):
            record(node.vector_selector, None, node.range.total_seconds())
            return
        if isinstance(node, promql_parser.Call):
            for arg in node.args:
                if isinstance(arg, promql_parser.MatrixSelector):
                    record(arg.vector_selector, node.func.name, arg.range.total_seconds())
                else:
                    visit(arg)
            return
        for child in ("expr", "lhs", "rhs", "param"):
            value = getattr(node, child, None)
            if value is not None and not isinstance(value, str | int | float):
                visit(value)

    visit(promql_parser.parse(expr))
    return uses
