"""Rendered previews of the dashboards' main panels, drawn from a real run (``make dashboard-previews``).

What a newcomer sees before having a Grafana: the service (two API processes, the outbox
worker) on PostgreSQL and Redis, scraped every second by a real Prometheus that evaluates the
generated rules of one environment (windows shortened 60 times, as in the end-to-end alerting
test: the rule called ``1h`` averages over 1 minute). A bounded loopback load goes through
phases that give the panels something to show: steady traffic, an overload burst (requests
queue: slow requests, event-loop lag, pool use), a faulty pod in rotation (injected 500s) while
the webhook receiver fails (worker retries), then recovery. Each selected panel's own PromQL,
from dashboards/*.json with Grafana's variables filled in, is evaluated with query_range over
the run and drawn with matplotlib to docs/dashboards/<dashboard>-<panel id>.png, with an index
docs/dashboards/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter

from kit import alerts_gen, slo
from kit.paths import DASHBOARDS, ROOT
from testsupport import processes
from testsupport.load import Balancer, SteadyLoad, api_users
from testsupport.prometheus import (
    RULES_FILE,
    SCRAPE_INTERVAL_SECONDS,
    cluster_exporter,
    point_job_at,
    query_range,
    service_prometheus_config,
)
from testsupport.servers import PrometheusServer, postgres_server, prometheus_server, redis_server
from testsupport.webhook_receiver import Receiver

OUTPUT = ROOT / "docs" / "dashboards"
NAMESPACE = "reference-service-preview"
WINDOW_SCALE = 1 / 60
FAULT_RATIO = "0.3"  # of the faulty pod's /api requests; it gets half the traffic while in rotation
USERS = 8
MAX_IN_FLIGHT = 96

# The main panels, by their explicit ids in kit/dashboards/ (ids never change meaning).
PANELS: tuple[tuple[str, int], ...] = (
    ("reference-service-slo", 4),  # Availability SLI (1h) vs objective
    ("reference-service-slo", 5),  # Availability burn rate per window
    ("reference-service-slo", 13),  # Availability error budget burndown
    ("reference-service-red", 6),  # Responses by status
    ("reference-service-red", 12),  # Share over the latency threshold per class
    ("reference-service-red", 14),  # 5xx ratio per endpoint class
    ("reference-service-saturation", 20),  # Event-loop lag
    ("reference-service-saturation", 9),  # DB pool in use
    ("reference-service-saturation", 14),  # Worker deliveries by outcome
)


@dataclass(frozen=True)
class Phase:
    name: str
    seconds: float
    rate: float  # requests per second offered (open loop)
    faulty_pod: bool = False  # the pod answering FAULT_RATIO of its requests with 500 is in rotation
    webhook_failing: bool = False  # the webhook receiver answers 503: the worker retries


PHASES: tuple[Phase, ...] = (
    Phase("steady", 50, 15),
    Phase("overload", 30, 400),
    Phase("steady", 20, 15),
    Phase("faulty pod", 40, 15, faulty_pod=True, webhook_failing=True),
    Phase("recovered", 40, 15),
)


def scaled(phases: Sequence[Phase], factor: float) -> list[Phase]:
    return [Phase(p.name, p.seconds * factor, p.rate, p.faulty_pod, p.webhook_failing) for p in phases]


class PreviewError(RuntimeError):
    """A selected panel is missing, or the run could not give it data: one line for the operator."""


# --- panels --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Panel:
    uid: str
    id: int
    title: str
    description: str
    unit: str
    targets: list[tuple[str, str]]  # (expr, legendFormat)
    thresholds: list[float]  # drawn dashed when the panel draws them

    @property
    def file_name(self) -> str:
        return f"{self.uid}-{self.id}.png"


def load_panels(selected: Sequence[tuple[str, int]] = PANELS, directory: Path = DASHBOARDS) -> list[Panel]:
    """The selected panels from the committed dashboards; a missing board or id is an error."""
    panels = []
    for uid, panel_id in selected:
        path = directory / f"{uid}.json"
        if not path.exists():
            raise PreviewError(f"no dashboard {path}")
        document = json.loads(path.read_text())
        found = [p for p in document["panels"] if p.get("id") == panel_id and p["type"] != "row"]
        if not found:
            raise PreviewError(f"dashboard {uid} has no panel with id {panel_id}")
        raw = found[0]
        defaults = raw.get("fieldConfig", {}).get("defaults", {})
        dashed = defaults.get("custom", {}).get("thresholdsStyle", {}).get("mode") == "dashed"
        steps = defaults.get("thresholds", {}).get("steps", []) if dashed else []
        panels.append(
            Panel(
                uid=uid,
                id=panel_id,
                title=raw["title"],
                description=raw.get("description", ""),
                unit=defaults.get("unit", "short"),
                targets=[(t["expr"], t.get("legendFormat", "")) for t in raw.get("targets", [])],
                thresholds=[s["value"] for s in steps if s.get("value") is not None],
            )
        )
    return panels


def rate_interval(step_seconds: float, scrape_seconds: float = SCRAPE_INTERVAL_SECONDS) -> str:
    """Grafana's $__rate_interval: max($__interval + scrape interval, 4 x scrape interval)."""
    return f"{max(step_seconds + scrape_seconds, 4 * scrape_seconds):g}s"


def concrete(expr: str, *, step_seconds: float, namespace: str) -> str:
    """A panel query with Grafana's macros and the board's variables filled in for this run."""
    return (
        expr.replace("$__rate_interval", rate_interval(step_seconds))
        .replace("$namespace", namespace)  # a plain name: a regex matching itself
        .replace("$job", ".+")
    )


def legend(template: str, labels: dict[str, str]) -> str:
    """Grafana's legendFormat: ``{{label}}`` replaced by the series' label value."""
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template).strip()
    return text or ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "value"


@dataclass
class Series:
    label: str
    times: list[float]  # unix seconds
    values: list[float]


def panel_series(
    prometheus: PrometheusServer, panel: Panel, start: float, end: float, step: float, namespace: str
) -> list[Series]:
    series = []
    for expr, template in panel.targets:
        for result in query_range(
            prometheus, concrete(expr, step_seconds=step, namespace=namespace), start, end, step
        ):
            times = [float(t) for t, _ in result["values"]]
            values = [float(v) for _, v in result["values"]]
            series.append(Series(legend(template, result["metric"]), times, values))
    return series


# --- drawing -------------------------------------------------------------------------------


def _unit_formatter(unit: str) -> FuncFormatter:
    def percent(value: float, _: float) -> str:
        return f"{value * 100:.0f}%" if abs(value) >= 0.1 else f"{value * 100:.2g}%"

    def seconds(value: float, _: float) -> str:
        return f"{value * 1000:.3g} ms" if 0 < abs(value) < 1 else f"{value:.3g} s"

    suffix = {"reqps": " req/s", "ops": " ops/s", "x": "x"}.get(unit, "")
    formats = {"percentunit": percent, "s": seconds}
    return FuncFormatter(formats.get(unit, lambda value, _: f"{value:.3g}{suffix}"))


def draw(
    panel: Panel, series: list[Series], phases: list[tuple[Phase, float, float]], start: float, path: Path
) -> None:
    """One panel as a ~800x400 PNG: its series over the run, its thresholds, the load phases shaded."""
    figure, axes = plt.subplots(figsize=(8, 4), dpi=100)
    try:
        shades = ("#f2f2f2", "#ffffff")
        for index, (phase, begin, end) in enumerate(phases):
            axes.axvspan(begin - start, end - start, color=shades[index % 2], zorder=0)
            axes.text(
                (begin + end) / 2 - start, 1.0, phase.name, transform=axes.get_xaxis_transform(),
                ha="center", va="bottom", fontsize=7, color="#555555",
            )  # fmt: skip
        for item in sorted(series, key=lambda s: s.label)[:10]:  # Grafana's legend would scroll
            axes.plot([t - start for t in item.times], item.values, label=item.label, linewidth=1.2)
        for threshold in panel.thresholds:
            axes.axhline(threshold, color="#c0392b", linestyle="--", linewidth=0.9)
        axes.yaxis.set_major_formatter(_unit_formatter(panel.unit))
        axes.xaxis.set_major_formatter(
            FuncFormatter(lambda value, _: f"{int(value) // 60}:{int(value) % 60:02d}")
        )
        axes.set_xlim(0, max(end for _, _, end in phases) - start)
        axes.set_xlabel("time into the run (min:s)", fontsize=8)
        axes.tick_params(labelsize=7)
        axes.grid(True, linewidth=0.3)
        axes.set_title(f"{panel.title}  ({panel.uid}, panel {panel.id})", fontsize=9, pad=14)
        axes.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        figure.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=100)
    finally:
        plt.close(figure)


# --- the run -------------------------------------------------------------------------------


@dataclass
class Run:
    """What the run did, for the index page and the test."""

    environment: str
    phases: list[tuple[Phase, float, float]] = field(default_factory=list)  # (phase, start, end) unix s
    sent: list[int] = field(default_factory=list)  # requests per phase
    failed: int = 0
    step: float = 2.0
    series: dict[tuple[str, int], list[Series]] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return sum(self.sent)

    @property
    def start(self) -> float:
        return self.phases[0][1]

    @property
    def end(self) -> float:
        return self.phases[-1][2]


def _step_for(seconds: float) -> float:
    return max(1.0, round(seconds / 120))  # ~120 points per line


@contextlib.contextmanager
def data_services(database_url: str | None, redis_url: str | None) -> Iterator[tuple[str, str]]:
    """(database URL, Redis URL): the given ones (a test's session servers), else throwaway servers."""
    with contextlib.ExitStack() as stack:
        if database_url is None:
            pg = stack.enter_context(postgres_server())
            pg.psql("CREATE DATABASE previews")
            database_url = pg.url("previews")
        if redis_url is None:
            redis_url = stack.enter_context(redis_server()).url
        yield database_url, redis_url


@contextlib.contextmanager
def monitored_service(
    environment: str, log_dir: Path, database_url: str | None = None, redis_url: str | None = None
) -> Iterator[tuple[PrometheusServer, str, str, Receiver]]:
    """A healthy and a faulty API and the worker (on PostgreSQL, Redis and a webhook receiver) and
    a Prometheus with the environment's rules; yields (prometheus, healthy url, faulty url, receiver)."""
    spec = slo.load()
    sel = spec.selectors
    options = alerts_gen.RenderOptions(
        environment, window_scale=WINDOW_SCALE, evaluation_interval="1s", namespace=NAMESPACE
    )
    receiver = Receiver().start()
    with contextlib.ExitStack() as stack:
        stack.callback(receiver.stop)
        database_url, redis_url = stack.enter_context(data_services(database_url, redis_url))
        settings = {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "WEBHOOK_URL": receiver.url,
            "RATE_LIMIT_ENABLED": "false",  # every user is 127.0.0.1: the limits would measure the limiter
            "LOG_LEVEL": "WARNING",
            "OUTBOX_POLL_INTERVAL_SECONDS": "0.2",
            "OUTBOX_BACKOFF_BASE_SECONDS": "0.5",
            "OUTBOX_BACKOFF_MAX_SECONDS": "5",
        }
        processes.migrate(log_dir, settings["DATABASE_URL"])
        healthy = processes.new_api(log_dir, **settings)
        faulty = processes.new_api(log_dir, **settings, FAULT_INJECTION_ERROR_RATIO=FAULT_RATIO)
        worker = processes.new_worker(log_dir, **settings)
        # The cluster's own series (kube-state-metrics: the recorded objectives need the Deployment).
        cluster = stack.enter_context(cluster_exporter(sel, NAMESPACE))
        prometheus = stack.enter_context(
            prometheus_server(
                service_prometheus_config(sel, cluster),
                {RULES_FILE: alerts_gen.render_rules_yaml(spec, options)},
            )
        )
        stack.enter_context(processes.running(healthy, faulty, worker))
        # Both API pods are scraped all along, as a Deployment's two replicas; only the
        # balancer decides whether the faulty one gets traffic.
        api_targets = [p.base_url.removeprefix("http://") for p in (healthy, faulty)]
        point_job_at(prometheus, sel.api_job, api_targets, NAMESPACE)
        point_job_at(prometheus, sel.worker_job, [f"127.0.0.1:{worker.metrics_port}"], NAMESPACE)
        yield prometheus, healthy.base_url, faulty.base_url, receiver


async def _drive(phases: Sequence[Phase], healthy: str, faulty: str, receiver: Receiver, run: Run) -> None:
    tokens = await api_users(healthy, USERS)
    for phase in phases:
        backends = [healthy, faulty] if phase.faulty_pod else [healthy]
        receiver.status = 503 if phase.webhook_failing else 204
        load = SteadyLoad(
            Balancer(backends), tokens, rate=phase.rate, duration=phase.seconds, max_in_flight=MAX_IN_FLIGHT
        )
        began = time.time()
        result = await load.run()
        run.phases.append((phase, began, time.time()))
        run.sent.append(result.sent)
        run.failed += len(result.failed)
    receiver.status = 204


def capture(
    phases: Sequence[Phase],
    environment: str,
    panels: Sequence[Panel],
    log_dir: Path,
    *,
    settle: float = 6.0,
    database_url: str | None = None,
    redis_url: str | None = None,
) -> Run:
    """Drive the phases against the monitored service and read every panel's series over the run."""
    run = Run(environment)
    service = monitored_service(environment, log_dir, database_url, redis_url)
    with service as (prometheus, healthy, faulty, receiver):
        time.sleep(settle)  # a few scrapes before the load, so rates start at the first phase
        asyncio.run(_drive(phases, healthy, faulty, receiver, run))
        time.sleep(settle)  # the last phase's samples scraped and recorded
        run.step = _step_for(run.end - run.start)
        for panel in panels:
            run.series[(panel.uid, panel.id)] = panel_series(
                prometheus, panel, run.start, run.end, run.step, NAMESPACE
            )
    return run


def write_index(run: Run, panels: Sequence[Panel], out: Path) -> Path:
    lines = [
        "# Dashboard previews",
        "",
        "The main panels of the three Grafana boards in [dashboards/](../../dashboards), drawn from a "
        "real run by `make dashboard-previews` (`python -m kit.dashboard_previews`, source "
        "[kit/dashboard_previews.py](../../kit/dashboard_previews.py)). Each image is the panel's own "
        "PromQL from the committed dashboard JSON (variables filled in: `$namespace` = the run's namespace, "
        f"`$job` = all, `$__rate_interval` = {rate_interval(run.step)} as Grafana computes it for a "
        f"{SCRAPE_INTERVAL_SECONDS} s scrape and a {run.step:g} s step), evaluated with `query_range` "
        "against the Prometheus that scraped the run. Dashed red lines are the panel's thresholds; the "
        "shaded bands are the load phases.",
        "",
        "## The run",
        "",
        f"- Generated {datetime.fromtimestamp(run.end, UTC):%Y-%m-%d %H:%M} UTC, "
        f"{run.end - run.start:.0f} s of load, {run.requests} requests "
        f"({run.failed} failed: 5xx or no answer).",
        "- The service as production runs it (`python -m app.main`, `python -m app.worker`) on "
        "PostgreSQL 15 and Redis, all on loopback: two API processes scraped as the two pods of the "
        f"API job, one of them started with `FAULT_INJECTION_ERROR_RATIO={FAULT_RATIO}` and kept out "
        "of rotation except in the faulty-pod phase.",
        f"- Prometheus scrapes every {SCRAPE_INTERVAL_SECONDS} s and evaluates the generated rules of the "
        f"`{run.environment}` environment, scoped to namespace `{NAMESPACE}`, with every window shortened 60 "
        "times as in tests/alerts/test_e2e_prometheus.py: the series named `1h` is a 1-minute window, `30d` "
        "12 hours. Over a run of minutes the long windows hold only the run, so burn rates and budgets move "
        "far faster than in production. The series a cluster adds that the rules need (the recorded "
        "objectives exist per API Deployment, from kube-state-metrics) come from the same stand-in "
        "exposition as in that test (testsupport/prometheus.py); no panel shown here draws them.",
        f"- Load (testsupport/load.py, open loop, {USERS} users creating, listing and reading "
        f"projects, at most {MAX_IN_FLIGHT} requests in flight: in the overload phase the service's "
        "throughput, not the offered rate, sets what is sent), by phase:",
        "",
        "| phase | seconds | offered req/s | sent req/s | faulty pod in rotation | webhook receiver |",
        "|---|---|---|---|---|---|",
    ]
    for (phase, began, ended), sent in zip(run.phases, run.sent, strict=True):
        lines.append(
            f"| {phase.name} | {ended - began:.0f} | {phase.rate:g} | {sent / (ended - began):.0f} | "
            f"{'yes' if phase.faulty_pod else 'no'} | {'503' if phase.webhook_failing else '204'} |"
        )
    lines += ["", "## Panels", ""]
    for panel in panels:
        lines += [
            f"### {panel.title} ({panel.uid}, panel {panel.id})",
            "",
            f"![{panel.title}]({panel.file_name})",
            "",
            panel.description,
            "",
            f"In this run: {WHAT_IT_SHOWS.get((panel.uid, panel.id), '')}".rstrip(),
            "",
        ]
    path = out / "README.md"
    path.write_text("\n".join(lines).rstrip() + "\n")
    return path


# What to look for in each image, given the phases of the run.
WHAT_IT_SHOWS: dict[tuple[str, int], str] = {
    ("reference-service-slo", 4): "the SLI stays at 100 % until the faulty pod joins, falls several "
    "points below the objective while it takes half the traffic, and climbs back once the shortened "
    "1h window (1 minute) no longer holds its 500s.",
    ("reference-service-slo", 5): "zero before the fault; in the faulty-pod phase the short windows "
    "(5m, 30m) burn at a hundred times the budget or more, far above the page lines, and fall soon "
    "after recovery while the longer windows stay raised.",
    ("reference-service-slo", 13): "flat at 100 % until the faulty pod, then a cliff far below 0: the "
    "shortened 30-day window (12 hours) holds only these minutes, so the run's 500s spend the "
    "budget many times over; it recovers slowly as good requests add up.",
    ("reference-service-red", 6): "200s and 201s at the steady rate, a higher and jagged rate while "
    "the service is overloaded, and 500s only while the faulty pod is in rotation.",
    ("reference-service-red", 12): "near zero at the steady rate; during the overload burst requests "
    "queue and a large share of the read and write classes is slower than their thresholds, far "
    "above the budget line.",
    ("reference-service-red", 14): "zero except in the faulty-pod phase, when the read and write "
    "classes answer a share of 500s (the faulty pod fails 30 % of its half of the traffic).",
    (
        "reference-service-saturation",
        20,
    ): "a few milliseconds at the steady rate; during the overload burst the "
    "loop lags by hundreds of milliseconds, the idle faulty pod's too (both share the machine's two "
    "cores with PostgreSQL, Prometheus and the load).",
    (
        "reference-service-saturation",
        9,
    ): "zero or one connection at the steady rate; during the overload burst "
    "the healthy pod checks out most of its pool at times.",
    ("reference-service-saturation", 14): "delivered follows the creates (and rises with the "
    "overload's creates); while the receiver answers 503, a few retries open the worker's circuit "
    "breaker and deliveries stop; the backlog goes out in one burst when the breaker lets a "
    "delivery through again (CIRCUIT_BREAKER_RESET_SECONDS, 30 s) after the receiver recovered.",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kit.dashboard_previews", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, default=OUTPUT, help="where the PNGs and README.md go")
    parser.add_argument(
        "--environment",
        default=None,
        help="whose generated rules Prometheus evaluates (default: the alerting one)",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="multiply every phase's length (default 1: ~3 min of load)",
    )
    args = parser.parse_args(argv)
    if args.time_scale <= 0:
        parser.error("--time-scale must be positive")
    spec = slo.load()
    environment = args.environment or spec.alerting_environment
    try:
        spec.objectives(environment)
    except slo.SpecError as error:
        print(f"dashboard-previews: {error}", file=sys.stderr)
        return 2
    phases = scaled(PHASES, args.time_scale)
    try:
        panels = load_panels()
        with tempfile.TemporaryDirectory(prefix="dashboard-previews-") as logs:
            print(f"dashboard-previews: {sum(p.seconds for p in phases):.0f} s of load, {len(panels)} panels")
            run = capture(phases, environment, panels, Path(logs))
        empty = [f"{uid}/{pid}" for (uid, pid), series in run.series.items() if not series]
        if empty:
            raise PreviewError(f"no data for panels {', '.join(empty)}")
        for panel in panels:
            draw(panel, run.series[(panel.uid, panel.id)], run.phases, run.start, args.out / panel.file_name)
        index = write_index(run, panels, args.out)
    except (PreviewError, RuntimeError, TimeoutError) as error:
        print(f"dashboard-previews: {error}", file=sys.stderr)
        return 1
    print(f"dashboard-previews: {run.requests} requests; wrote {len(panels)} images and {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
