"""Simulate the SLO gate: how often does it fail a healthy service, and pass a burning one?

``python -m loadtests.gate_sim`` (what ``make gate-sim`` calls) draws binomial samples at the
request counts of the CI run, for a service whose every SLO class burns its latency and
availability budgets at 0.5x, 1x, 2x and the alerts' page rates (6x, 14.4x), and judges each
simulated run with the gate's own SLI checks (:func:`loadtests.gate.sli_checks`). It prints, per
form of the run (the full ``make loadtest`` and the 25 s form in ``make test``):

* the whole gate's verdict rates; **false fail** = breach at <= 1x, **false pass** = pass at a
  page-level burn (2x is a ticket-level burn: reported, neither true nor false);
* per SLI the exact breach probability (no simulation: binomial tails), which the simulated
  rates must agree with.

The request counts come from the journey mix at the ci rate (``shapes.route_rates``) or, with
``--summary``, from a real run's ``summary.json``. Deterministic for a given ``--seed``.
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import random
import sys
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from loadtests import gate, shapes, sli, targets
from loadtests.gate import GateResult, Policy, Verdict
from loadtests.runstats import SliCounts

DEFAULT_SEED = 20261202
BURNS = (0.5, 1.0, 2.0)  # plus the page burn rates of the spec


@dataclass(frozen=True)
class Form:
    """One way the gate runs: its name, measured seconds and policy."""

    name: str
    seconds: float
    policy: Policy


FORMS = (
    Form("full (make loadtest ENV=ci, 120 s)", 120.0, gate.POLICIES["fixed"]),
    Form("short (make test, 25 s)", 25.0, gate.SHORT),
)


def expected_counts(env_targets: targets.EnvironmentTargets, seconds: float) -> dict[str, int]:
    """Requests per SLO class in a fixed run at the gate's derived rate (the journey mix's mean)."""
    plan = shapes.fixed(gate.rate_for_targets(env_targets), seconds, 0.0)
    rates = shapes.route_rates(plan.steps[0].users / shapes.PACING_SECONDS, plan.background_users)
    counts: Counter[str] = Counter()
    for route, rate in rates.items():
        method, template = route.split(" ", 1)
        class_name, target = env_targets.target_for(method, template)
        if class_name and target and target.in_slo:
            counts[class_name] += round(rate * seconds)
    return dict(counts)


def counts_from_summary(path: Path, env_targets: targets.EnvironmentTargets) -> dict[str, int]:
    """Requests per SLO class of a real run (its ``summary.json``)."""
    data = json.loads(path.read_text())
    counts: Counter[str] = Counter()
    for row in data["endpoints"]:
        target = env_targets.classes.get(row["class"]) if row["class"] else None
        if target and target.in_slo:
            counts[row["class"]] += int(row["requests"])
    return dict(counts)


class Sampler:
    """Exact binomial draws by inverse CDF (tables cached per (n, p)); pure Python, seeded."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)

    @staticmethod
    @cache
    def _table(n: int, p: float) -> tuple[int, tuple[float, ...]]:
        if n == 0 or p <= 0:
            return 0, (1.0,)
        spread = 12 * math.sqrt(n * p * (1 - p)) + 12
        lo, hi = max(0, math.floor(n * p - spread)), min(n, math.ceil(n * p + spread))
        weights = [math.exp(sli._log_pmf(k, n, p)) for k in range(lo, hi + 1)]
        total, cumulative = 0.0, []
        for w in weights:
            total += w
            cumulative.append(total)
        return lo, tuple(c / total for c in cumulative)

    def draw(self, n: int, p: float) -> int:
        lo, cumulative = self._table(n, min(p, 1.0))
        return lo + min(bisect.bisect_left(cumulative, self.random.random()), len(cumulative) - 1)


def simulate(
    counts: dict[str, int],
    env_targets: targets.EnvironmentTargets,
    policy: Policy,
    burn: float,
    trials: int,
    sampler: Sampler,
) -> Counter[Verdict]:
    """Verdicts of ``trials`` runs of a service burning ``burn`` x both budgets in every class."""
    availability = burn * (1 - env_targets.availability_objective)
    latency = burn * (1 - env_targets.latency_objective)
    verdicts: Counter[Verdict] = Counter()
    for _ in range(trials):
        by_class = {}
        for class_name, n in counts.items():
            errors = sampler.draw(n, availability)
            slow = sampler.draw(n - errors, latency)
            threshold = float(env_targets.classes[class_name].latency_threshold_ms)
            within = {threshold: n - errors - slow}
            by_class[class_name] = SliCounts(n, errors, 0, 0, 0, within, within)
        checks = gate.sli_checks(by_class, env_targets, policy, describe=False)
        verdicts[GateResult(env_targets.environment, checks).verdict] += 1
    return verdicts


def _pct(value: float) -> str:
    if value == 0:
        return "0 %"
    if value < 0.001:
        return "< 0.1 %"
    return f"{value:.1%}".replace("%", " %")


def form_report(
    form: Form,
    counts: dict[str, int],
    env_targets: targets.EnvironmentTargets,
    trials: int,
    seed: int,
) -> str:
    rules = form.policy.sli_policy(env_targets)
    page = min(env_targets.page_burn_rates)
    burns = sorted({*BURNS, *env_targets.page_burn_rates})
    sample = ", ".join(f"{c} {n}" for c, n in sorted(counts.items()))
    lines = [
        f"### {form.name}: catches {rules.detect_burn:g}x with {rules.power:.0%} power per SLI; "
        f"{form.policy.confidence:.0%} confidence for the gate ({rules.confidence * 100:.4g} % per SLI)",
        "",
        f"Requests per run: {sample} (service {sum(counts.values())}); {trials} simulated runs per row, "
        f"seed {seed}.",
        "",
        "| budget burn | breach | pass | inconclusive | false fail | false pass |",
        "|--:|--:|--:|--:|--:|--:|",
    ]
    sampler = Sampler(seed)
    for burn in burns:
        verdicts = simulate(counts, env_targets, form.policy, burn, trials, sampler)
        breach, passed = verdicts[Verdict.BREACH] / trials, verdicts[Verdict.PASS] / trials
        inconclusive = verdicts[Verdict.INCONCLUSIVE] / trials
        false_fail = _pct(breach) if burn <= 1 else "-"
        false_pass = _pct(passed) if burn >= page else "-"
        lines.append(
            f"| {burn:g}x | {_pct(breach)} | {_pct(passed)} | {_pct(inconclusive)} | {false_fail} "
            f"| {false_pass} |"
        )
    lines += [
        "",
        "Exact breach probability per SLI (binomial tails; a class SLI below its needed count is "
        "not judged, so it cannot pass, but it can still breach):",
        "",
        "| SLI | requests | needed | " + " | ".join(f"{b:g}x" for b in burns) + " |",
        "|---|--:|--:|" + "--:|" * len(burns),
    ]
    budgets = {
        "availability": 1 - env_targets.availability_objective,
        "latency": 1 - env_targets.latency_objective,
    }
    subjects = [(f"class {c}", n) for c, n in sorted(counts.items())] + [("service", sum(counts.values()))]
    for subject, n in subjects:
        for name, budget in budgets.items():
            needed = sli.minimum_samples(budget, rules.detect_burn, rules.confidence, rules.power)
            cells = [
                _pct(sli.breach_probability(n, burn * budget, budget, rules.confidence)) for burn in burns
            ]
            mark = "" if n >= needed else " (not judged)"
            lines.append(f"| {subject} {name}{mark} | {n} | {needed} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.gate_sim", description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="ci", help="environment whose objectives the gate judges")
    parser.add_argument("--trials", type=int, default=20_000, help="simulated runs per burn rate")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--summary",
        type=Path,
        default=None,
        help="take the request counts of the full form from this run's summary.json",
    )
    args = parser.parse_args(argv)
    if args.trials < 1:
        parser.error("--trials must be at least 1")
    try:
        env_targets = targets.load(args.env)
        reports = []
        for form in FORMS:
            if args.summary and form is FORMS[0]:
                counts = counts_from_summary(args.summary, env_targets)
            else:
                counts = expected_counts(env_targets, form.seconds)
            reports.append(form_report(form, counts, env_targets, args.trials, args.seed))
    except (targets.TargetsError, OSError, KeyError, ValueError) as exc:
        print(f"gate simulation failed: {exc}", file=sys.stderr)
        return 2
    print(
        f"## Load gate simulation: `{args.env}` (availability {env_targets.availability_objective:.3%}, "
        f"latency {env_targets.latency_objective:.0%} under each class's threshold)\n"
    )
    print("\n\n".join(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
