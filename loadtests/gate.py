"""The load-test gate: judge one run against the SLOs of an environment.

The verdict is the SLI itself, per SLO class and for the service as the alert rules pool it:

* **latency SLI**: share of answered requests (everything but 5xx) slower than the class's
  ``latency_threshold_ms``, against ``1 - latency_objective`` (e.g. 99 % under 250 ms);
* **availability SLI**: share of 5xx and unanswered requests (refused, reset, timed out),
  against ``1 - availability_objective``. 4xx and 429 are not SLO errors.

Each SLI is judged with exact binomial arithmetic (:mod:`loadtests.sli`): a *breach* needs the
bad count to be implausible for a service spending exactly its budget (p <= 1 % for the whole
gate, split over its SLIs); a *pass* needs enough requests that a burn at the alerts' page rate
would have breached in 95 % of runs.
Below that count an SLI is *not judged* and named in the verdict; the service-level SLIs must
be judged for the run to pass. ``python -m loadtests.gate_sim`` prints the resulting
false-pass and false-fail rates.

Besides the SLIs: the run must have kept >= 95 % of its task schedule (the service kept up with
the offered rate), and an endpoint fails outright on gross errors (5 or more, over 1 %). p95 and
p99 are reported next to their reference values as a regression signal, never the verdict;
regressions are judged by relative mode (``compare.py``).

Verdicts and exit codes:

* ``pass`` (0): every judged SLI is within its objective and the schedule was kept.
* ``breach`` (3): an SLI burns its budget faster than 1x, the schedule slipped, or an endpoint
  fails outright.
* ``inconclusive`` (4, also used for run errors): the figures cannot be trusted or do not
  suffice: the load generator saturated its CPU, other processes took more than a quarter of a
  core (a shared runner), a service-level SLI has too few requests, the
  journeys got 4xx/429 instead of the paths they should measure, or the run made no requests.
  Never reported as a pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import IntEnum, StrEnum
from typing import Literal

from loadtests import shapes, sli
from loadtests.runstats import EndpointStats, RunStats, SliCounts, merge, percentile
from loadtests.targets import ClassTarget, EnvironmentTargets


class Verdict(StrEnum):
    PASS = "pass"  # noqa: S105 - a verdict, not a password
    BREACH = "breach"
    INCONCLUSIVE = "inconclusive"
    NOT_JUDGED = "not judged"  # too few samples for a class SLI: named in the verdict, never a pass
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

SERVICE = "service"  # subject of the pooled SLIs, as the alert rules compute them


@dataclass(frozen=True)
class Policy:
    """What the gate judges and how sure it must be. The objectives come from the SLO targets."""

    confidence: float = 0.99  # a service at exactly its budget breaches in <= 1 % of runs (whole gate)
    power: float = 0.95  # a judged SLI catches the detected burn in >= 95 % of runs
    detect_page_burn: Literal["slowest", "fastest"] = "slowest"  # 6x (6 h window) or 14.4x (1 h)
    schedule_tolerance: float = 0.05  # executed tasks may fall this far short of the schedule
    judge_latency: bool = True
    judge_schedule: bool = True
    require_service_sli: bool = True  # a service-level SLI with too few requests: inconclusive
    max_foreign_cores: float | None = 0.25  # other processes' CPU beyond this: a shared machine
    gross_errors: int = 5  # an endpoint with at least this many errors ...
    gross_ratio: float = 0.01  # ... over this share fails outright (or, for 4xx, is inconclusive)

    def sli_policy(self, targets: EnvironmentTargets) -> sli.SliPolicy:
        """Per-SLI rules: the gate's false-breach share split over its SLIs (Bonferroni)."""
        rates = targets.page_burn_rates
        burn = min(rates) if self.detect_page_burn == "slowest" else max(rates)
        slo_classes = sum(t.in_slo for t in targets.classes.values())
        judged = (slo_classes + 1) * (2 if self.judge_latency else 1)  # per class and the service
        return sli.SliPolicy(1 - (1 - self.confidence) / judged, self.power, burn)


# The short shapes judge less: a smoke run proves the journeys work (any server error fails it),
# a step run finds capacity (latency past the knee is expected).
_LOOSE = Policy(judge_latency=False, judge_schedule=False, require_service_sli=False, max_foreign_cores=None)
POLICIES = {
    "fixed": Policy(),
    "smoke": replace(_LOOSE, gross_errors=1, gross_ratio=0.0),
    "step": _LOOSE,
}
# The 25 s form in make test: too few requests to rule out a 6x burn, enough for 14.4x.
SHORT = Policy(detect_page_burn="fastest")


@dataclass(frozen=True)
class Check:
    subject: str  # "GET /api/v1/projects", "class read", "service" or "run"
    name: str  # "latency SLI", "availability SLI", "errors", "p95", "schedule", "load generator", ...
    verdict: Verdict
    observed: float | None
    limit: float | None
    message: str
    requests: int | None = None  # the sample an SLI was judged on
    needed: int | None = None  # requests an SLI needs before it can pass


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

    def not_judged(self) -> list[Check]:
        return [c for c in self.checks if c.verdict is Verdict.NOT_JUDGED]

    def summary(self) -> str:
        """One plain-language sentence for logs and PR comments."""
        failing = self.failing()
        if self.verdict is Verdict.PASS:
            judged = [c for c in self.checks if c.verdict is Verdict.PASS and c.name.endswith("SLI")]
            text = f"PASS: {self.environment} met its SLOs ({len(judged)} SLIs judged)."
            gaps = self.not_judged()
            if gaps:
                text += " Not judged (too few requests): " + "; ".join(
                    f"{c.subject} {c.name} ({c.requests} of {c.needed})" for c in gaps
                )
                text += "."
            return text
        reasons = "; ".join(f"{c.subject}: {c.message}" for c in failing[:5])
        more = f" (+{len(failing) - 5} more)" if len(failing) > 5 else ""
        if self.verdict is Verdict.BREACH:
            return f"BREACH: {self.environment} missed its SLOs. {reasons}{more}"
        return f"INCONCLUSIVE: the {self.environment} figures cannot be trusted. {reasons}{more}"


def _percent(share: float) -> str:
    """99.875 % stays 99.875 %, not a rounded 100 %."""
    return f"{share * 100:.4g}%"


def _ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3g} ms" if value < 1000 else f"{value:.0f} ms"


_VERDICT_OF = {
    sli.Decision.PASS: Verdict.PASS,
    sli.Decision.BREACH: Verdict.BREACH,
    sli.Decision.NOT_JUDGED: Verdict.NOT_JUDGED,
}


def _sli_check(
    subject: str,
    name: str,
    bad: int,
    total: int,
    budget: float,
    what: str,
    policy: sli.SliPolicy,
    *,
    gated: bool,
    required: bool,
    describe: bool,
) -> Check:
    """One SLI: the exact-binomial verdict and a sentence with the burn and its upper bound."""
    if not describe:  # the simulation: the verdict alone, thousands of times
        decision = sli.decide(bad, total, budget, policy)
        judgement = None
    else:
        judgement = sli.judge(bad, total, budget, policy)
        decision = judgement.decision
    verdict = _VERDICT_OF[decision] if gated else Verdict.INFO
    if verdict is Verdict.NOT_JUDGED and required:
        verdict = Verdict.INCONCLUSIVE
    needed = sli.minimum_samples(budget, policy.detect_burn, policy.confidence, policy.power)
    message = ""
    if judgement is not None:
        message = (
            f"{judgement.share:.2%} {what} ({bad} of {total}; budget {budget:.2%}): burn "
            f"{judgement.burn:.3g}x, {_percent(policy.confidence)} upper bound {judgement.burn_upper:.3g}x"
        )
        if decision is sli.Decision.BREACH:
            message += f"; burns the budget faster than 1x ({_percent(policy.confidence)} confidence)"
        elif decision is sli.Decision.NOT_JUDGED:
            message += f"; {needed} requests are needed to rule out a {policy.detect_burn:g}x burn"
        if not gated:
            message += " (not in the SLO: shown, not gated)"
    return Check(subject, name, verdict, bad / total if total else None, budget, message, total, needed)


def _uncorrected(counts: SliCounts, target: ClassTarget, slow: int) -> str:
    """How many were slow when timed from sending, if the schedule-lag correction added some."""
    raw = counts.over(target.latency_threshold_ms, corrected=False)
    return "" if raw is None or raw == slow else f", {raw} without the schedule-lag correction"


def sli_checks(
    counts_by_class: dict[str, SliCounts],
    targets: EnvironmentTargets,
    policy: Policy,
    *,
    describe: bool = True,
) -> list[Check]:
    """The SLI checks per class and for the service (pooled like the alert rules).

    ``counts_by_class`` holds every class that had requests; classes without any are skipped.
    """
    rules = policy.sli_policy(targets)
    availability_budget = 1 - targets.availability_objective
    latency_budget = 1 - targets.latency_objective
    checks: list[Check] = []
    pooled_errors = pooled_requests = pooled_slow = pooled_answered = 0
    for class_name in sorted(counts_by_class):
        counts = counts_by_class[class_name]
        target = targets.classes[class_name]
        if counts.requests == 0:
            continue
        subject = f"class {class_name}"
        checks.append(
            _sli_check(
                subject,
                "availability SLI",
                counts.errors,
                counts.requests,
                availability_budget,
                "5xx or unanswered",
                rules,
                gated=target.in_slo,
                required=False,
                describe=describe,
            )
        )
        slow = counts.over(target.latency_threshold_ms)
        if target.in_slo:
            pooled_errors += counts.errors
            pooled_requests += counts.requests
        if not policy.judge_latency or slow is None or counts.answered == 0:
            continue
        checks.append(
            _sli_check(
                subject,
                "latency SLI",
                slow,
                counts.answered,
                latency_budget,
                f"over {target.latency_threshold_ms:g} ms{_uncorrected(counts, target, slow)}",
                rules,
                gated=target.in_slo,
                required=False,
                describe=describe,
            )
        )
        if target.in_slo:
            pooled_slow += slow
            pooled_answered += counts.answered
    if pooled_requests:
        checks.append(
            _sli_check(
                SERVICE,
                "availability SLI",
                pooled_errors,
                pooled_requests,
                availability_budget,
                "5xx or unanswered",
                rules,
                gated=True,
                required=policy.require_service_sli,
                describe=describe,
            )
        )
    if pooled_answered:
        checks.append(
            _sli_check(
                SERVICE,
                "latency SLI",
                pooled_slow,
                pooled_answered,
                latency_budget,
                "over its class threshold",
                rules,
                gated=True,
                required=policy.require_service_sli,
                describe=describe,
            )
        )
    return checks


def _run_checks(stats: RunStats, policy: Policy) -> list[Check]:
    checks = []
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
    if stats.foreign_cpu_cores is not None:
        limit = policy.max_foreign_cores
        busy = limit is not None and stats.foreign_cpu_cores > limit
        checks.append(
            Check(
                "run",
                "shared machine",
                Verdict.INCONCLUSIVE if busy else Verdict.INFO,
                stats.foreign_cpu_cores,
                limit,
                f"other processes used {stats.foreign_cpu_cores:.2f} CPU cores on average during the run"
                + (
                    f" (more than {limit:g}): the latencies measure the neighbours, not the service; "
                    "rerun on a quiet runner or use relative mode"
                    if busy
                    else ""
                ),
            )
        )
    if policy.judge_schedule and stats.tasks_planned > 0:
        achieved = stats.tasks_executed / stats.tasks_planned
        floor = 1 - policy.schedule_tolerance
        ok = achieved >= floor
        checks.append(
            Check(
                "run",
                "schedule",
                Verdict.PASS if ok else Verdict.BREACH,
                achieved,
                floor,
                f"kept {achieved:.1%} of the task schedule (at least {floor:.0%} required)"
                + ("" if ok else ": the service could not keep up with the offered rate"),
            )
        )
    if stats.schedule_lag_ms:
        late = sum(n for lag, n in stats.schedule_lag_ms.items() if lag > 0)
        tasks = sum(stats.schedule_lag_ms.values())
        checks.append(
            Check(
                "run",
                "schedule lag",
                Verdict.INFO,
                percentile(stats.schedule_lag_ms, 0.99),
                None,
                f"{late} of {tasks} tasks started behind schedule (p99 lag "
                f"{_ms(percentile(stats.schedule_lag_ms, 0.99))}, max {_ms(max(stats.schedule_lag_ms))}); "
                "their requests' latency is counted from when they were due (coordinated omission)",
            )
        )
    return checks


def _endpoint_checks(
    endpoint: EndpointStats, counts: SliCounts, target: ClassTarget, class_name: str, policy: Policy
) -> list[Check]:
    subject = endpoint.key
    p95, p99 = endpoint.percentile(0.95), endpoint.percentile(0.99)
    checks = []
    share = counts.errors / counts.requests
    if counts.errors >= policy.gross_errors and share > policy.gross_ratio:
        checks.append(
            Check(
                subject,
                "errors",
                Verdict.BREACH,
                share,
                policy.gross_ratio,
                f"fails outright: {counts.server_errors} answered 5xx and {counts.transport_errors} "
                f"unanswered of {counts.requests} ({share:.1%})",
                counts.requests,
            )
        )
    refused = counts.client_errors + counts.throttled
    if refused >= policy.gross_errors and refused / counts.requests > policy.gross_ratio:
        checks.append(
            Check(
                subject,
                "journey",
                Verdict.INCONCLUSIVE,
                refused / counts.requests,
                policy.gross_ratio,
                f"{counts.client_errors} answered 4xx and {counts.throttled} 429 of {counts.requests}: "
                "not SLO errors, but the journey did not run the paths it measures (seed data, accounts or "
                "rate limits for the load-test accounts)",
                counts.requests,
            )
        )
    if target.p95_ms is not None and p95 is not None:
        checks.append(
            Check(
                subject,
                "p95",
                Verdict.INFO,
                p95,
                target.p95_ms,
                f"p95 {_ms(p95)} ({'within' if p95 <= target.p95_ms else 'over'} the {_ms(target.p95_ms)} "
                f"reference of class {class_name}; a regression signal, not the verdict)",
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
                f"p99 {_ms(p99)} (reference {_ms(target.p99_ms)})",
            )
        )
    return checks


def evaluate(stats: RunStats, targets: EnvironmentTargets, policy: Policy) -> GateResult:
    result = GateResult(targets.environment)
    checks = result.checks
    checks.extend(_run_checks(stats, policy))
    if stats.total_requests == 0:
        checks.append(Check("run", "samples", Verdict.INCONCLUSIVE, 0, None, "the run made no requests"))
        return result

    by_class: dict[str, list[SliCounts]] = {}
    unrecorded: list[str] = []
    for endpoint in sorted(stats.endpoints, key=lambda e: e.key):
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
        counts = endpoint.sli
        if counts is None or counts.requests == 0:
            unrecorded.append(subject)
            continue
        if counts.over(target.latency_threshold_ms) is None and policy.judge_latency:
            unrecorded.append(f"{subject} at {target.latency_threshold_ms:g} ms")
        by_class.setdefault(class_name, []).append(counts)
        checks.extend(_endpoint_checks(endpoint, counts, target, class_name, policy))
    if unrecorded:
        checks.append(
            Check(
                "run",
                "SLI counts",
                Verdict.INCONCLUSIVE,
                None,
                None,
                "the run did not count requests for the SLIs ("
                + ", ".join(unrecorded[:3])
                + "): record it with this version's locustfile and a plan carrying the latency bounds",
            )
        )
        return result
    checks.extend(sli_checks({c: _sum(v) for c, v in by_class.items()}, targets, policy))
    for class_name, counts_list in sorted(by_class.items()):
        minimum = targets.classes[class_name].min_throughput_rps
        if minimum is None:
            continue
        achieved_rps = stats.rps(sum(c.requests for c in counts_list))
        checks.append(
            Check(
                f"class {class_name}",
                "throughput",
                Verdict.INFO,
                achieved_rps,
                minimum,
                f"{achieved_rps:.1f} req/s achieved against {minimum:g} req/s to cover "
                "(the offered rate is derived from it; the schedule check judges keeping up)",
            )
        )
    return result


def _sum(counts: Iterable[SliCounts]) -> SliCounts:
    total = SliCounts()
    for c in counts:
        total = total + c
    return total


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
