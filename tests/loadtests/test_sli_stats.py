"""The gate's statistics: exact binomial tails and bounds, the breach rule, the minimum sample,
the SLI counting rule, and the false-pass / false-fail rates the simulation reports."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from loadtests import gate_sim, sli
from loadtests.runstats import SliCounts
from loadtests.sli import Decision, SliPolicy
from loadtests.targets import load

POLICY = SliPolicy(confidence=0.99, power=0.95, detect_burn=6.0)


def brute_sf(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))


@pytest.mark.parametrize(("n", "p"), [(10, 0.3), (50, 0.01), (200, 0.5), (300, 0.001)])
def test_binomial_tails_match_the_textbook_sum(n: int, p: float) -> None:
    for k in range(0, n + 2):
        assert sli.sf(k, n, p) == pytest.approx(brute_sf(k, n, p), rel=1e-9, abs=1e-15)
    assert sli.cdf(3, n, p) == pytest.approx(1 - brute_sf(4, n, p), abs=1e-12)


def test_clopper_pearson_bounds_have_their_closed_forms_at_the_edges() -> None:
    # No bad request in n: the upper bound is 1 - alpha^(1/n) (the "rule of three" for 95 %).
    assert sli.upper_bound(0, 1000, 0.95) == pytest.approx(1 - 0.05 ** (1 / 1000), rel=1e-9)
    # All n bad: the lower bound is alpha^(1/n).
    assert sli.lower_bound(20, 20, 0.99) == pytest.approx(0.01 ** (1 / 20), rel=1e-9)
    assert sli.lower_bound(0, 1000, 0.99) == 0.0 and sli.upper_bound(5, 0, 0.99) == 1.0
    lo, hi = sli.lower_bound(7, 2000, 0.99), sli.upper_bound(7, 2000, 0.99)
    assert lo < 7 / 2000 < hi
    assert sli.sf(7, 2000, lo) == pytest.approx(0.01, rel=1e-6)  # the bound is where the tail is alpha
    assert sli.cdf(7, 2000, hi) == pytest.approx(0.01, rel=1e-6)


def test_the_critical_count_is_the_fewest_bad_requests_that_prove_a_burn_above_1x() -> None:
    for total, budget in [(100, 0.01), (2000, 0.001), (9000, 0.001), (5000, 0.01)]:
        k = sli.critical_count(total, budget, 0.99)
        assert sli.sf(k, total, budget) <= 0.01 < sli.sf(k - 1, total, budget)


def test_the_minimum_sample_catches_the_burn_with_the_power_from_there_on() -> None:
    for budget in (0.01, 0.001):
        n = sli.minimum_samples(budget, 6.0, 0.99, 0.95)
        assert sli.breach_probability(n - 1, 6 * budget, budget, 0.99) < 0.95
        assert all(sli.breach_probability(m, 6 * budget, budget, 0.99) >= 0.95 for m in range(n, 2 * n))
    # A faster burn is caught sooner; a 99.9 % objective needs ten times the requests of 99 %.
    assert sli.minimum_samples(0.001, 14.4, 0.99, 0.95) < sli.minimum_samples(0.001, 6.0, 0.99, 0.95)
    assert 1900 < sli.minimum_samples(0.001, 6.0, 0.99, 0.95) < 2100
    assert 180 < sli.minimum_samples(0.01, 6.0, 0.99, 0.95) < 210
    with pytest.raises(ValueError, match="above 1x"):
        sli.minimum_samples(0.01, 1.0, 0.99, 0.95)


@pytest.mark.parametrize(
    ("bad", "total", "decision"),
    [
        (0, 0, Decision.NOT_JUDGED),  # nothing measured
        (0, 100, Decision.NOT_JUDGED),  # clean, but 100 requests cannot rule out a 6x burn
        (6, 100, Decision.BREACH),  # 6 % of 100 at a 1 % budget: conclusive already
        (4, 1000, Decision.PASS),  # 0.4 %: within
        (18, 1000, Decision.PASS),  # 1.8 %: P(>= 18 | 1 %) = 1.4 %, not provably over 1x at 99 %
        (19, 1000, Decision.BREACH),  # P(>= 19 | 1 %) < 1 %
    ],
)
def test_decisions_on_crafted_counts(bad: int, total: int, decision: Decision) -> None:
    assert sli.decide(bad, total, 0.01, POLICY) is decision
    if total:
        assert sli.judge(bad, total, 0.01, POLICY).decision is decision


def test_judgement_reports_the_burn_and_its_upper_bound() -> None:
    judgement = sli.judge(5, 1000, 0.01, POLICY)
    assert judgement.burn == pytest.approx(0.5)
    assert judgement.burn_upper == pytest.approx(sli.upper_bound(5, 1000, 0.99) / 0.01)
    assert judgement.minimum == sli.minimum_samples(0.01, 6.0, 0.99, 0.95)
    with pytest.raises(ValueError, match="budget"):
        sli.judge(0, 10, 1.5, POLICY)
    with pytest.raises(ValueError, match="between 0 and total"):
        sli.judge(11, 10, 0.01, POLICY)


def test_simulated_false_fail_and_false_pass_rates_stay_within_the_design() -> None:
    """Deterministic: 2,000 runs of one SLI at 1x / 0.5x (must pass) and 6x (must breach)."""
    rng = gate_sim.Sampler(seed=7)
    n = sli.minimum_samples(0.001, 6.0, 0.99, 0.95)
    rates = {}
    for burn in (0.5, 1.0, 6.0):
        decisions = [sli.decide(rng.draw(n, burn * 0.001), n, 0.001, POLICY) for _ in range(2000)]
        rates[burn] = decisions.count(Decision.BREACH) / 2000
    assert rates[0.5] <= 0.002
    assert rates[1.0] <= 0.02  # <= 1 % by construction, plus simulation noise
    assert rates[6.0] >= 0.93  # >= 95 % power by construction, minus simulation noise
    exact = sli.breach_probability(n, 0.006, 0.001, 0.99)
    assert abs(rates[6.0] - exact) < 0.02


def test_the_sampler_draws_binomial_counts() -> None:
    rng = gate_sim.Sampler(seed=1)
    draws = [rng.draw(1000, 0.3) for _ in range(4000)]
    assert sum(draws) / len(draws) == pytest.approx(300, abs=1.5)
    variance = sum((d - 300) ** 2 for d in draws) / len(draws)
    assert variance == pytest.approx(1000 * 0.3 * 0.7, rel=0.1)
    assert gate_sim.Sampler(seed=1).draw(1000, 0.3) == gate_sim.Sampler(seed=1).draw(1000, 0.3)
    assert rng.draw(0, 0.5) == 0 and rng.draw(10, 0.0) == 0


def test_sli_counts_compare_the_exact_response_time_with_each_bound() -> None:
    counts = SliCounts()
    bounds = (250.0, 1000.0)
    for status, ms, lag in [
        (200, 250.0, 0.0),  # exactly at the threshold: fast enough (Prometheus' le is <=)
        (200, 250.4, 0.0),  # Locust's histogram would round this to 250
        (201, 200.0, 60.0),  # fast when sent, but the task was due 60 ms earlier
        (404, 10.0, 0.0),  # a 4xx is answered: counted for latency, not an error
        (429, 10.0, 0.0),
        (503, 5.0, 0.0),  # a 5xx is an error and leaves the latency SLI
        (0, 10_000.0, 0.0),  # no answer at all (refused, reset, timeout)
    ]:
        counts.record(status, ms, lag, bounds)
    assert (counts.requests, counts.server_errors, counts.transport_errors) == (7, 1, 1)
    assert (counts.client_errors, counts.throttled, counts.errors, counts.answered) == (1, 1, 2, 5)
    assert counts.within_ms == {250.0: 4, 1000.0: 5}
    assert counts.over(250, corrected=False) == 1
    assert counts.over(250) == 2  # the late task's request, timed from when it was due
    assert counts.over(100) is None  # a bound the run did not count
    merged = counts + counts
    assert merged.requests == 14 and merged.within_corrected_ms == {250.0: 6, 1000.0: 10}
    assert SliCounts.from_json(counts.to_json()) == counts


def test_gate_sim_prints_the_table_deterministically(capsys: pytest.CaptureFixture[str]) -> None:
    assert gate_sim.main(["--trials", "200", "--seed", "3"]) == 0
    first = capsys.readouterr().out
    assert gate_sim.main(["--trials", "200", "--seed", "3"]) == 0
    assert capsys.readouterr().out == first
    assert "| budget burn | breach | pass | inconclusive | false fail | false pass |" in first
    rows = [line for line in first.splitlines() if line.startswith(("| 0.5x", "| 6x", "| 14.4x"))]
    assert len(rows) == 6  # full and short form
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        if row.startswith("| 0.5x"):
            assert cells[4] == "0 %"  # false fail
        else:
            assert cells[5] == "0 %"  # false pass
    assert "| service availability | " in first


def test_gate_sim_refuses_nonsense() -> None:
    with pytest.raises(SystemExit):
        gate_sim.main(["--trials", "0"])


def test_random_module_is_not_shared_state() -> None:
    # The simulation must not depend on, or disturb, the global random generator.
    random.seed(0)
    before = random.random()
    random.seed(0)
    gate_sim.Sampler(seed=5).draw(100, 0.5)
    assert random.random() == before


def test_gate_sim_takes_the_counts_of_a_real_run(tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    endpoints = [
        {"endpoint": "GET /api/v1/projects", "class": "read", "requests": 5000},
        {"endpoint": "POST /api/v1/projects", "class": "write", "requests": 700},
        {"endpoint": "GET /health/live", "class": "health", "requests": 300},  # not in the SLO
        {"endpoint": "GET /metrics", "class": None, "requests": 60},
    ]
    summary.write_text(json.dumps({"endpoints": endpoints}))
    assert gate_sim.counts_from_summary(summary, load("ci")) == {"read": 5000, "write": 700}
    assert gate_sim.main(["--trials", "50", "--summary", str(summary)]) == 0
    assert gate_sim.main(["--trials", "50", "--summary", str(tmp_path / "missing.json")]) == 2
