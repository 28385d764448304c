"""Outputs of a gated run: JSON summary, JUnit XML, a Markdown summary and a latency-over-time PNG.

Locust writes its own HTML report next to these. The Markdown is meant for a pull-request
comment; it names the PNG by file name, so upload both side by side.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import asdict
from pathlib import Path
from typing import Any

from loadtests.gate import Check, GateResult, Verdict, capacity_knee
from loadtests.runstats import RunStats
from loadtests.targets import EnvironmentTargets

SUMMARY_JSON, JUNIT_XML, SUMMARY_MD, LATENCY_PNG, HTML_REPORT = (
    "summary.json",
    "junit.xml",
    "summary.md",
    "latency.png",
    "report.html",
)


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:.3g}{unit}" if value < 100 else f"{value:.0f}{unit}"


def endpoint_rows(stats: RunStats, targets: EnvironmentTargets) -> list[dict[str, Any]]:
    rows = []
    for e in sorted(stats.endpoints, key=lambda e: (e.name, e.method)):
        class_name, target = targets.target_for(e.method, e.name)
        counts = e.sli
        slow = counts.over(target.latency_threshold_ms) if counts and target else None
        rows.append(
            {
                "endpoint": e.key,
                "class": class_name,
                "requests": e.num_requests,
                "failures": e.num_failures,
                "error_ratio": e.error_ratio,
                "slo_errors": counts.errors if counts else None,
                "client_errors": counts.client_errors if counts else None,
                "throttled": counts.throttled if counts else None,
                "threshold_ms": target.latency_threshold_ms if target else None,
                "over_threshold": slow,
                "over_threshold_share": slow / counts.answered
                if counts and slow is not None and counts.answered
                else None,
                "rps": stats.rps(e.num_requests),
                "p50_ms": e.percentile(0.5),
                "p95_ms": e.percentile(0.95),
                "p99_ms": e.percentile(0.99),
                "max_ms": max(e.response_times) if e.response_times else None,
                "target_p95_ms": target.p95_ms if target else None,
            }
        )
    return rows


def _endpoint_verdict(checks: list[Check], subject: str, class_name: str | None) -> str:
    """Endpoints are judged through their class's SLIs; alone only for gross errors or 4xx."""
    verdicts = {c.verdict for c in checks if c.subject == subject}
    for verdict in (Verdict.BREACH, Verdict.INCONCLUSIVE):
        if verdict in verdicts:
            return verdict.value
    return "ok" if class_name else "not gated"


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}"


def markdown_table(stats: RunStats, targets: EnvironmentTargets, result: GateResult) -> str:
    """Per endpoint: what the SLIs counted and the latency figures (p95 against its reference)."""
    lines = [
        "| endpoint | class | req | req/s | 5xx + unanswered | 4xx / 429 | % over threshold "
        "| p50 ms | p95 ms | p99 ms | p95 reference | endpoint check |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in endpoint_rows(stats, targets):
        refused = f"{r['client_errors']} / {r['throttled']}" if r["client_errors"] is not None else "-"
        over = (
            f"{_share(r['over_threshold_share'])} (> {r['threshold_ms']:g} ms)"
            if r["over_threshold_share"] is not None
            else "-"
        )
        lines.append(
            f"| `{r['endpoint']}` | {r['class'] or '-'} | {r['requests']} | {r['rps']:.1f} | "
            f"{_count(r['slo_errors'])} | {refused} | {over} | {_fmt(r['p50_ms'])} | {_fmt(r['p95_ms'])} | "
            f"{_fmt(r['p99_ms'])} | {_fmt(r['target_p95_ms'])} | "
            f"{_endpoint_verdict(result.checks, r['endpoint'], r['class'])} |"
        )
    return "\n".join(lines)


def sli_table(result: GateResult) -> str:
    """Per class and for the service: each SLI, its sample, its burn and the verdict."""
    rows = [c for c in result.checks if c.name.endswith(" SLI")]
    if not rows:
        return ""
    lines = [
        "| subject | SLI | requests | bad | bad % | budget % | needed to pass | verdict | detail |",
        "|---|---|--:|--:|--:|--:|--:|---|---|",
    ]
    for c in rows:
        bad = round((c.observed or 0) * (c.requests or 0))
        lines.append(
            f"| {c.subject} | {c.name.removesuffix(' SLI')} | {_count(c.requests)} | {bad} | "
            f"{_share(c.observed)} | {_share(c.limit)} | {_count(c.needed)} | {c.verdict.value} | "
            f"{c.message} |"
        )
    return "\n".join(lines)


def capacity_table(stats: RunStats) -> str:
    rows = capacity_knee(stats)
    if not rows:
        return ""
    lines = ["| offered req/s | achieved req/s | p95 ms | users | keeps up |", "|--:|--:|--:|--:|---|"]
    for r in rows:
        lines.append(
            f"| {r['offered_rps']:.0f} | {r['achieved_rps']:.0f} | {_fmt(r['p95_ms'])} | "
            f"{r['users']:.0f} | {'yes' if r['keeps_up'] else 'no'} |"
        )
    keeping = [r for r in rows if r["keeps_up"]]
    knee = (
        f"Capacity knee: about {keeping[-1]['achieved_rps']:.0f} req/s (last step that kept up)."
        if keeping
        else "Capacity knee: below the first step."
    )
    return "\n".join([*lines, "", knee])


def markdown(stats: RunStats, targets: EnvironmentTargets, result: GateResult) -> str:
    plan = stats.plan
    other_checks = [
        c
        for c in result.checks
        if (c.subject == "run" or c.subject.startswith("class ")) and not c.name.endswith(" SLI")
    ]
    parts = [
        f"## Load test `{targets.environment}`: {result.verdict.value.upper()}",
        "",
        result.summary(),
        "",
        f"Shape `{plan.kind}`: {plan.peak_users} journey users, about {plan.steps[0].rate_rps:.0f} req/s "
        f"offered, {stats.measured_seconds:.0f}s measured after {plan.warmup_seconds:.0f}s warm-up, against "
        f"`{stats.host}`. {stats.total_requests} requests, {stats.total_failures} failed; load generator "
        f"CPU {'SATURATED' if stats.cpu_warning else 'ok'}.",
        "",
        sli_table(result),
        "",
        markdown_table(stats, targets, result),
        "",
    ]
    if other_checks:
        parts += ["| check | verdict | detail |", "|---|---|---|"]
        parts += [f"| {c.subject}: {c.name} | {c.verdict.value} | {c.message} |" for c in other_checks]
        parts.append("")
    if plan.kind == "step":
        parts += [capacity_table(stats), ""]
    parts += [f"![latency over time]({LATENCY_PNG})", ""]
    return "\n".join(parts)


def junit(result: GateResult, stats: RunStats) -> str:
    gated = [c for c in result.checks if c.verdict is not Verdict.INFO]  # not judged: a skipped case
    suite = ET.Element(
        "testsuite",
        {
            "name": f"loadtest.{result.environment}",
            "tests": str(len(gated)),
            "failures": str(sum(c.verdict is Verdict.BREACH for c in gated)),
            "errors": str(sum(c.verdict is Verdict.INCONCLUSIVE for c in gated)),
            "skipped": str(sum(c.verdict is Verdict.NOT_JUDGED for c in gated)),
            "time": f"{stats.measured_seconds:.1f}",
        },
    )
    for check in gated:
        case = ET.SubElement(
            suite,
            "testcase",
            {"classname": f"loadtest.{result.environment}.{check.subject}", "name": check.name},
        )
        if check.verdict is Verdict.BREACH:
            ET.SubElement(case, "failure", {"message": check.message, "type": "breach"})
        elif check.verdict is Verdict.INCONCLUSIVE:
            ET.SubElement(case, "error", {"message": check.message, "type": "inconclusive"})
        elif check.verdict is Verdict.NOT_JUDGED:
            ET.SubElement(case, "skipped", {"message": check.message})
        else:
            ET.SubElement(case, "system-out").text = check.message
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def summary_json(stats: RunStats, targets: EnvironmentTargets, result: GateResult) -> dict[str, Any]:
    return {
        "environment": result.environment,
        "host": stats.host,
        "verdict": result.verdict.value,
        "exit_code": int(result.exit_code),
        "summary": result.summary(),
        "plan": stats.plan.to_json(),
        "measured_seconds": stats.measured_seconds,
        "cpu_warning": stats.cpu_warning,
        "foreign_cpu_cores": stats.foreign_cpu_cores,
        "total_requests": stats.total_requests,
        "total_failures": stats.total_failures,
        "tasks": {"planned": stats.tasks_planned, "executed": stats.tasks_executed},
        "objectives": {
            "availability": targets.availability_objective,
            "latency": targets.latency_objective,
        },
        "endpoints": endpoint_rows(stats, targets),
        "checks": [{**asdict(c), "verdict": c.verdict.value} for c in result.checks],
        "capacity": capacity_knee(stats) if stats.plan.kind == "step" else [],
        "errors": stats.errors,
        "locust_version": stats.locust_version,
    }


def plot(stats: RunStats, path: Path) -> None:
    """p95 per endpoint per second (top) and throughput and users (bottom); warm-up shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (latency, load) = plt.subplots(
        2, 1, figsize=(10, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    keys = sorted({k for p in stats.timeline for k in p.endpoints})
    for key in keys:
        points = [(p.t, p.endpoints[key]["p95"]) for p in stats.timeline if key in p.endpoints]
        if len(points) > 1:
            latency.plot(*zip(*points, strict=True), label=key, linewidth=1)
    latency.set_yscale("log")
    latency.set_ylabel("p95 per second (ms, log)")
    latency.set_title(f"{stats.plan.kind} run against {stats.host}")
    latency.legend(fontsize=7, loc="upper left", ncols=2)
    latency.grid(alpha=0.3)
    seconds = [p.t for p in stats.timeline]
    load.plot(seconds, [sum(p.total_hist.values()) for p in stats.timeline], label="requests/s")
    load.plot(seconds, [p.users for p in stats.timeline], label="users")
    load.set_xlabel("seconds since start")
    load.legend(fontsize=7, loc="upper left")
    load.grid(alpha=0.3)
    for axis in (latency, load):
        axis.axvspan(0, stats.plan.warmup_seconds, color="grey", alpha=0.15, label="warm-up")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write_all(out: Path, stats: RunStats, targets: EnvironmentTargets, result: GateResult) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in (SUMMARY_JSON, JUNIT_XML, SUMMARY_MD, LATENCY_PNG)}
    paths[SUMMARY_JSON].write_text(json.dumps(summary_json(stats, targets, result), indent=2) + "\n")
    paths[JUNIT_XML].write_text(junit(result, stats))
    paths[SUMMARY_MD].write_text(markdown(stats, targets, result))
    plot(stats, paths[LATENCY_PNG])
    return paths
