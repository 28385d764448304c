"""The load-test gate: judge one run against the SLO targets of an environment.

Verdicts and exit codes:

* ``pass`` (0): every gated endpoint met its p95, error-ratio and throughput targets.
* ``breach`` (3): at least one threshold was missed, with enough samples to say so.
* ``inconclusive`` (4, also used for run errors): the figures cannot be trusted, because the load
  generator saturated its CPU (Locust's CPU warning), an endpoint has too few samples for a
  p95, or the run produced no requests. Never reported as a pass.

p99 is shown but never gates: with a few thousand samples it rests on a few dozen requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

from loadtests import shapes
from loadtests.runstats import RunStats, merge, percentile
from loadtests.targets import EnvironmentTargets


class Verdict(StrEnum):
    PASS = "pass"  # noqa: S105 - a verdict, not a password
    BREACH = "breach"
    INCONCLUSIVE = "inconclusive"
    INFO = "info"


class ExitCode(IntEnum):
    PASS = 0
    BREACH = 3
    INCONCLUSIVE = 4  # also: the run itself failed (stack did not start, Locust crashed)


EXIT_CODES = {
    Verdict.PASS: ExitCode.PASS,
    Verdict.BREACH: ExitCode.BREACH,
    Verdict.INCONCLUSIVE: ExitCode.INCONCLUSIVE,
}


@dataclass(frozen=True)
class Policy:
    """What the gate judges. The limits themselves come from the SLO targets."""

    min_samples: int = 100  # 5 requests beyond the p95: fewer and the p95 is one or two requests
    schedule_tolerance: float = 0.05  # executed tasks may fall this far short of the schedule
    judge_latency: bool = True
    judge_throughput: bool = True


# The short shapes judge less: a smoke run proves the journeys work, a step run finds capacity.
POLICIES = {
    "fixed": Policy(),
    "smoke": Policy(min_samples=1, judge_latency=False, judge_throughput=False),
    "step": Policy(min_samples=1, judge_latency=False, judge_throughput=False),
}


@dataclass(frozen=True)
class Check:
    subject: str  # "GET /api/v1/projects", "class read", or "run"
    name: str  # "p95", "p99", "error ratio", "throughput", "samples", "load generator", ...
    verdict: Verdict
    observed: float | None
    limit: float | None
    message: str


@dataclass
class GateResult:
    environment: str
    checks: list[Check] = field(default_factory=list)

    @property
    def verdict(self) -> Verdict:
        verdicts = {c.verdict for c in self.checks}
        if any(c.verdict is Verdict.INCONCLUSIVE and c.subject == "run" for c in self.checks):
            return Verdict.INCONCLUSIVE  # an unreliable run makes any breach unreliable too
        if Verdict.BREACH in verdicts:
            return Verdict.BREACH
        if Verdict.INCONCLUSIVE in verdicts:
            return Verdict.INCONCLUSIVE
        return Verdict.PASS

    @property
    def exit_code(self) -> ExitCode:
        return EXIT_CODES[self.verdict]

    def failing(self) -> list[Check]:
        return [c for c in self.checks if c.verdict in (Verdict.BREACH, Verdict.INCONCLUSIVE)]

    def summary(self) -> str:
        """One plain-language sentence for logs and PR comments."""
        failing = self.failing()
        if self.verdict is Verdict.PASS:
            gated = len({c.subject for c in self.checks if c.verdict is Verdict.PASS})
            return f"PASS: {self.environment} met its targets ({gated} endpoints and classes checked)."
        reasons = "; ".join(f"{c.subject}: {c.message}" for c in failing[:5])
        more = f" (+{len(failing) - 5} more)" if len(failing) > 5 else ""
        if self.verdict is Verdict.BREACH:
            return f"BREACH: {self.environment} missed its targets. {reasons}{more}"
        return f"INCONCLUSIVE: the {self.environment} figures cannot be trusted. {reasons}{more}"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g} ms"


def evaluate(stats: RunStats, targets: EnvironmentTargets, policy: Policy) -> GateResult:
    result = GateResult(targets.environment)
    checks = result.checks
    if stats.cpu_warning:
        checks.append(
            Check(
                "run",
                "load generator",
                Verdict.INCONCLUSIVE,
                None,
                None,
                "Locust's CPU passed 90 %, so its timings are not reliable; add workers or lower the rate",
            )
        )
    if stats.total_requests == 0:
        checks.append(Check("run", "samples", Verdict.INCONCLUSIVE, 0, None, "the run made no requests"))
        return result
    if policy.judge_throughput and stats.tasks_planned > 0:
        achieved = stats.tasks_executed / stats.tasks_planned
        floor = 1 - policy.schedule_tolerance
        ok = achieved >= floor
        checks.append(
            Check(
                "run",
                "offered rate",
                Verdict.PASS if ok else Verdict.BREACH,
                achieved,
                floor,
                f"ran {achieved:.1%} of the scheduled journey steps"
                + ("" if ok else f", below {floor:.0%}: the service could not keep up with the offered rate"),
            )
        )

    by_class: dict[str, list[int]] = {}
    for endpoint in stats.endpoints:
        class_name, target = targets.target_for(endpoint.method, endpoint.name)
        subject = endpoint.key
        if target is None or class_name is None:
            checks.append(
                Check(
                    subject,
                    "target",
                    Verdict.INFO,
                    None,
                    None,
                    "no SLO class maps this route; shown, not gated",
                )
            )
            continue
        by_class.setdefault(class_name, []).append(endpoint.num_requests)
        if endpoint.num_requests == 0:
            checks.append(
                Check(
                    subject,
                    "samples",
                    Verdict.INFO,
                    0,
                    None,
                    "called only during the warm-up (e.g. once per user); not measured",
                )
            )
            continue
        if target.max_error_ratio is not None:
            ratio = endpoint.error_ratio
            ok = ratio <= target.max_error_ratio
            checks.append(
                Check(
                    subject,
                    "error ratio",
                    Verdict.PASS if ok else Verdict.BREACH,
                    ratio,
                    target.max_error_ratio,
                    f"{ratio:.2%} errors ({endpoint.num_failures}/{endpoint.num_requests}), "
                    f"limit {target.max_error_ratio:.2%}",
                )
            )
        if not policy.judge_latency:
            continue
        if endpoint.num_requests < policy.min_samples:
            checks.append(
                Check(
                    subject,
                    "samples",
                    Verdict.INCONCLUSIVE,
                    endpoint.num_requests,
                    policy.min_samples,
                    f"{endpoint.num_requests} requests, fewer than the {policy.min_samples} "
                    "a p95 needs; run longer or at a higher rate",
                )
            )
            continue
        p95, p99 = endpoint.percentile(0.95), endpoint.percentile(0.99)
        if target.p95_ms is not None and p95 is not None:
            ok = p95 <= target.p95_ms
            checks.append(
                Check(
                    subject,
                    "p95",
                    Verdict.PASS if ok else Verdict.BREACH,
                    p95,
                    target.p95_ms,
                    f"p95 {_ms(p95)} {'within' if ok else 'over'} the {_ms(target.p95_ms)} "
                    f"target of class {class_name}",
                )
            )
        if target.p99_ms is not None:
            checks.append(
                Check(
                    subject,
                    "p99",
                    Verdict.INFO,
                    p99,
                    target.p99_ms,
                    f"p99 {_ms(p99)} (target {_ms(target.p99_ms)}, informational)",
                )
            )

    if policy.judge_throughput and targets.min_throughput_rps is not None:
        achieved_rps = stats.rps(stats.total_requests)
        ok = achieved_rps >= targets.min_throughput_rps
        checks.append(
            Check(
                "all endpoints",
                "throughput",
                Verdict.PASS if ok else Verdict.BREACH,
                achieved_rps,
                targets.min_throughput_rps,
                f"{achieved_rps:.1f} req/s {'meets' if ok else 'is below'} the "
                f"{targets.min_throughput_rps:g} req/s target",
            )
        )
    if policy.judge_throughput:
        for class_name, counts in sorted(by_class.items()):
            minimum = targets.classes[class_name].min_throughput_rps
            if minimum is None:
                continue
            achieved_rps = stats.rps(sum(counts))
            ok = achieved_rps >= minimum
            checks.append(
                Check(
                    f"class {class_name}",
                    "throughput",
                    Verdict.PASS if ok else Verdict.BREACH,
                    achieved_rps,
                    minimum,
                    f"{achieved_rps:.1f} req/s {'meets' if ok else 'is below'} the {minimum:g} req/s target",
                )
            )
    return result


def rate_for_targets(targets: EnvironmentTargets, headroom: float = 1.3) -> float:
    """Journey request rate (req/s) whose mix offers every class ``headroom`` x its minimum throughput.

    Derived from the targets and the journey mix, so the rate is not a second copy of the SLO.
    """
    per_task = shapes.route_rates(1.0, background_users=0)
    background = shapes.route_rates(0.0)  # the scrapers alone
    task_rate = 0.0
    for class_name, target in targets.classes.items():
        if not target.min_throughput_rps:
            continue
        routes = [r for r, c in targets.routes.items() if c == class_name]
        offered_per_task = sum(per_task.get(r, 0.0) for r in routes)
        from_background = sum(background.get(r, 0.0) for r in routes)
        needed = target.min_throughput_rps * headroom - from_background
        if needed > 0 and offered_per_task > 0:
            task_rate = max(task_rate, needed / offered_per_task)
    if targets.min_throughput_rps:
        needed = targets.min_throughput_rps * headroom - sum(background.values())
        task_rate = max(task_rate, needed / sum(per_task.values()))
    return task_rate * sum(per_task.values())


def capacity_knee(
    stats: RunStats, settle_seconds: float = 2.0, keep_up: float = 0.95
) -> list[dict[str, float]]:
    """Per step of a step run: offered vs achieved rate and p95, so the knee can be read off.

    The knee is the last step whose achieved rate still reaches ``keep_up`` of the offered rate.
    The first ``settle_seconds`` of each step are skipped (users join, queues drain).
    """
    rows = []
    for step in stats.plan.steps:
        points = [p for p in stats.timeline if step.start + settle_seconds <= p.t < step.end]
        if not points:
            continue
        hist = merge(p.total_hist for p in points)
        achieved = sum(hist.values()) / len(points)
        rows.append(
            {
                "offered_rps": step.rate_rps,
                "achieved_rps": achieved,
                "p95_ms": percentile(hist, 0.95) or 0.0,
                "users": float(step.users),
                "keeps_up": float(achieved >= keep_up * step.rate_rps),
            }
        )
    return rows
