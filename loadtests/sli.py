"""The statistics of the SLO gate: is a run's share of bad requests compatible with the budget?

An SLI over a load-test run is a count: ``bad`` of ``total`` requests were bad (over the class's
latency threshold, or answered 5xx / not answered at all). The objective allows a bad share of
``budget`` (1 - objective). A run is a sample, so the gate asks two questions with exact
binomial (Clopper-Pearson) arithmetic:

* **Breach**: is ``bad`` so high that a service spending exactly its budget would reach it in at
  most ``1 - confidence`` of runs (one-sided p-value <= 1 - confidence)? Then the service burns
  its budget faster than 1x, and the gate says so whatever the sample size: a few errors in a
  few requests can already be conclusive.
* **Enough samples to pass**: otherwise the gate passes only when ``total`` reaches the minimum
  for which a service burning ``detect_burn`` x its budget (the page-level burn rate of the
  alerts) would breach in at least ``power`` of runs. Below it the SLI is *not judged*.

So a service at or under its budget breaches in at most ``1 - confidence`` of runs per SLI, and
a judged SLI misses a fast burn in at most ``1 - power`` of runs. ``python -m loadtests.gate_sim``
prints both rates at the sample counts of the CI run.

Pure Python (no SciPy): binomial tails are summed term by term in log space, which is exact to
float precision for the counts a load test produces.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import cache


class Decision(StrEnum):
    PASS = "pass"  # noqa: S105 - a verdict, not a password
    BREACH = "breach"
    NOT_JUDGED = "not judged"


def _log_pmf(k: int, n: int, p: float) -> float:
    return (
        math.lgamma(n + 1)
        - math.lgamma(k + 1)
        - math.lgamma(n - k + 1)
        + k * math.log(p)
        + (n - k) * math.log1p(-p)
    )


def _sum_terms(start: int, stop: int, step: int, n: int, p: float) -> float:
    """Sum pmf(k) from ``start`` towards ``stop`` (exclusive), stopping once terms vanish.

    Walking away from the mode, terms only shrink, so the sum ends when they stop mattering.
    """
    total = 0.0
    for k in range(start, stop, step):
        term = math.exp(_log_pmf(k, n, p))
        total += term
        moving_away = (step > 0 and k > n * p) or (step < 0 and k < n * p)
        if moving_away and term < total * 1e-17:
            break
    return total


def sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    if k > n * p:  # upper tail: sum upwards from k
        return min(1.0, _sum_terms(k, n + 1, 1, n, p))
    return max(0.0, 1.0 - _sum_terms(k - 1, -1, -1, n, p))  # 1 - P(X <= k-1)


def cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    return 1.0 - sf(k + 1, n, p)


def lower_bound(bad: int, total: int, confidence: float) -> float:
    """One-sided Clopper-Pearson lower bound of the bad share (0 when no request was bad)."""
    if bad <= 0 or total <= 0:
        return 0.0
    alpha = 1 - confidence
    # sf(bad; total, p) rises with p: the bound is where it crosses alpha.
    lo, _ = _bisect(0.0, bad / total, lambda p: sf(bad, total, p) > alpha)
    return lo


def upper_bound(bad: int, total: int, confidence: float) -> float:
    """One-sided Clopper-Pearson upper bound of the bad share (1 when there is no sample)."""
    if total <= 0:
        return 1.0
    if bad >= total:
        return 1.0
    alpha = 1 - confidence
    # cdf(bad; total, p) falls with p: the bound is where it crosses alpha.
    _, hi = _bisect(bad / total, 1.0, lambda p: not cdf(bad, total, p) > alpha)
    return hi


def _bisect(lo: float, hi: float, past: Callable[[float], bool]) -> tuple[float, float]:
    """80 halvings of [lo, hi] around the point where ``past`` (false below it, true above)
    turns true: far below float precision for any bound here."""
    for _ in range(80):
        mid = (lo + hi) / 2
        if past(mid):
            hi = mid
        else:
            lo = mid
    return lo, hi


@cache
def critical_count(total: int, budget: float, confidence: float) -> int:
    """Fewest bad requests in ``total`` that prove a burn above 1x: P(X >= k | budget) <= 1 - confidence."""
    alpha = 1 - confidence
    k = max(1, math.floor(total * budget))
    while k > 1 and sf(k - 1, total, budget) <= alpha:
        k -= 1
    while sf(k, total, budget) > alpha:
        k += 1
    return k


def breach_probability(total: int, bad_share: float, budget: float, confidence: float) -> float:
    """Exact probability that a run of ``total`` requests with true bad share ``bad_share`` breaches."""
    if total <= 0:
        return 0.0
    return sf(critical_count(total, budget, confidence), total, min(1.0, bad_share))


@cache
def minimum_samples(budget: float, detect_burn: float, confidence: float, power: float) -> int:
    """Fewest requests from which on a ``detect_burn`` x burn breaches in at least ``power`` of runs.

    The breach probability is a saw-tooth in the sample count (the critical count moves in whole
    requests), so this is the count after the last tooth that dips below ``power``.
    """
    bad_share = min(1.0, budget * detect_burn)
    if bad_share <= budget:
        raise ValueError(f"detect_burn must be above 1x, got {detect_burn}")
    first = None
    n = 1
    while first is None:  # first count that reaches the power (grows about 1/budget)
        if breach_probability(n, bad_share, budget, confidence) >= power:
            first = n
        n = n + 1 if n < 64 else math.ceil(n * 1.02)
    # Walk back to the exact first count, then past every later dip of the saw-tooth (by twice
    # the first count the power is far above any target). The critical count never falls as the
    # sample grows, so it is carried along instead of searched for at every count.
    alpha = 1 - confidence
    lo = max(1, math.floor(first / 1.02) - 1)
    k = critical_count(lo, budget, confidence)
    last_dip = lo - 1
    for n in range(lo, 2 * first + 1):
        while sf(k, n, budget) > alpha:
            k += 1
        if sf(k, n, bad_share) < power:
            last_dip = n
    return last_dip + 1


@dataclass(frozen=True)
class SliPolicy:
    """How sure the gate must be. Defaults: 1 % false breaches per SLI at 1x, 95 % power."""

    confidence: float = 0.99
    power: float = 0.95
    detect_burn: float = 6.0  # the burn a judged SLI must catch; the gate sets the alerts' page burn


@dataclass(frozen=True)
class SliJudgement:
    """One SLI of one run, judged against its objective."""

    bad: int
    total: int
    budget: float  # allowed bad share, 1 - objective
    decision: Decision
    minimum: int  # requests needed to pass
    lower: float  # one-sided bounds of the bad share at the policy's confidence
    upper: float

    @property
    def share(self) -> float:
        return self.bad / self.total if self.total else 0.0

    @property
    def burn(self) -> float:
        """Observed budget burn rate (bad share / budget): 1.0 spends exactly the budget."""
        return self.share / self.budget

    @property
    def burn_upper(self) -> float:
        return self.upper / self.budget


def decide(bad: int, total: int, budget: float, policy: SliPolicy) -> Decision:
    """The verdict alone (what the simulation calls many thousand times)."""
    if total <= 0:
        return Decision.NOT_JUDGED
    if bad >= critical_count(total, budget, policy.confidence):
        return Decision.BREACH
    if total < minimum_samples(budget, policy.detect_burn, policy.confidence, policy.power):
        return Decision.NOT_JUDGED
    return Decision.PASS


def judge(bad: int, total: int, budget: float, policy: SliPolicy) -> SliJudgement:
    if not 0 < budget < 1:
        raise ValueError(f"budget must be between 0 and 1, got {budget}")
    if not 0 <= bad <= total:
        raise ValueError(f"bad ({bad}) must be between 0 and total ({total})")
    return SliJudgement(
        bad,
        total,
        budget,
        decide(bad, total, budget, policy),
        minimum_samples(budget, policy.detect_burn, policy.confidence, policy.power),
        lower_bound(bad, total, policy.confidence),
        upper_bound(bad, total, policy.confidence),
    )
