"""Relative mode: the statistics behind "regression" and the plain-language verdict."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from loadtests.compare import (
    ComparePolicy,
    calibrate,
    calibration_markdown,
    compare,
    load_pairs,
    markdown,
    sign_test_p,
)
from loadtests.gate import Verdict
from loadtests.runstats import RunStats
from tests.loadtests.helpers import CREATE, LIST, endpoint, run_stats

FIVE = 5  # pairs: the fewest for which "slower in every pair" is significant (1 in 32 by chance)

POLICY = ComparePolicy(max_ratio=1.25, floor_ms=3.0, min_samples=100)


def runs(
    p95s: list[float], requests: int = 1000, failures: int = 0, cpu_warning: bool = False
) -> list[RunStats]:
    """One run per p95 value: 94 % of the requests at 1 ms, the rest at the p95."""
    fast = requests * 94 // 100
    return [
        run_stats(endpoint(LIST, {1.0: fast, p95: requests - fast}, failures), cpu_warning=cpu_warning)
        for p95 in p95s
    ]


def test_the_same_speed_is_no_regression_and_says_so() -> None:
    result = compare(runs([20, 21, 19, 20, 20]), runs([20, 20, 21, 20, 19]), POLICY)
    assert result.verdict is Verdict.PASS and result.exit_code == 0
    assert result.sentence() == (
        "No significant regression over 5 interleaved pairs: head p95 ranges from no slower "
        "(GET /api/v1/projects) to no slower (GET /api/v1/projects) than the base."
    )
    assert result.endpoints[0].ratios == pytest.approx([1.0, 20 / 21, 21 / 19, 1.0, 19 / 20])


def test_a_consistently_slower_head_is_a_regression() -> None:
    result = compare(runs([20] * FIVE), runs([30, 31, 29, 30, 30]), POLICY)
    assert result.verdict is Verdict.BREACH and result.exit_code == 3
    comparison = result.endpoints[0]
    assert comparison.median_ratio == pytest.approx(1.5)
    assert comparison.delta_ms == pytest.approx(10)
    assert result.sentence() == (
        "Regression: the head is significantly slower than the base on "
        "GET /api/v1/projects (p95 x1.50, +10.0 ms, slower in 5 of 5 pairs), over 5 interleaved pairs."
    )


def test_the_median_ignores_one_noisy_pair() -> None:
    result = compare(runs([20] * FIVE), runs([21, 60, 21, 20, 21]), POLICY)
    assert result.verdict is Verdict.PASS
    assert "from 5 % slower" in result.sentence()


def test_a_noisy_base_is_named_in_a_passing_verdict() -> None:
    result = compare(runs([20, 400, 280, 300, 20]), runs([40, 38, 20, 30, 30]), POLICY)
    assert result.verdict is Verdict.PASS
    assert "The base runs varied by up to 136% (GET /api/v1/projects)" in result.sentence()


def test_the_floor_keeps_a_fast_endpoint_from_tripping_on_whole_milliseconds() -> None:
    result = compare(runs([2] * FIVE), runs([3] * FIVE), POLICY)  # +50 % but only +1 ms
    assert result.verdict is Verdict.PASS
    strict = compare(runs([2] * FIVE), runs([3] * FIVE), ComparePolicy(floor_ms=0.5, min_samples=100))
    assert strict.verdict is Verdict.BREACH


def test_new_errors_in_the_head_are_a_regression() -> None:
    result = compare(runs([20] * FIVE), runs([20] * FIVE, failures=20), POLICY)
    assert result.verdict is Verdict.BREACH
    assert "errors 2.00% vs 0.00%" in result.sentence()


def test_noisy_base_runs_make_a_slowdown_inconclusive() -> None:
    result = compare(
        runs([10, 30, 20, 20, 20]), runs([40] * FIVE), ComparePolicy(floor_ms=50, min_samples=100)
    )
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.sentence().startswith("Inconclusive: the base runs disagree")


def test_endpoints_with_too_few_samples_are_skipped_and_none_left_is_inconclusive() -> None:
    result = compare(runs([20] * FIVE, requests=50), runs([20] * FIVE, requests=50), POLICY)
    assert result.skipped == ["GET /api/v1/projects"]
    assert result.verdict is Verdict.INCONCLUSIVE
    assert "no endpoint had enough requests" in result.sentence()


def test_a_saturated_generator_makes_the_comparison_inconclusive() -> None:
    result = compare(runs([20] * FIVE), runs([20] * FIVE, cpu_warning=True), POLICY)
    assert result.verdict is Verdict.INCONCLUSIVE and result.exit_code == 4
    assert "saturated its CPU in 5 run(s)" in result.sentence()


def test_markdown_lists_per_run_figures_and_skipped_endpoints() -> None:
    base = [run_stats(endpoint(LIST, {5.0: 1000}), endpoint(CREATE, {5.0: 10})) for _ in range(3)]
    head = [run_stats(endpoint(LIST, {6.0: 1000}), endpoint(CREATE, {5.0: 10})) for _ in range(3)]
    text = markdown(compare(base, head, POLICY), "origin/main", POLICY)
    assert "## Load-test comparison: head vs `origin/main`: PASS" in text
    assert "| `GET /api/v1/projects` | 5, 5, 5 | 6, 6, 6 | 1.20 | +1.0 |" in text
    assert "Not compared (fewer than 100 requests per run): `POST /api/v1/projects`" in text


def test_unpaired_runs_are_refused() -> None:
    with pytest.raises(ValueError, match="same, non-zero number"):
        compare(runs([20]), runs([20, 20]), POLICY)


def test_a_slower_median_without_a_consistent_direction_is_not_a_regression() -> None:
    # Median x1.5 but the head was faster in two of five pairs: a coin gives that 1 time in 2.
    result = compare(runs([20] * FIVE), runs([30, 30, 30, 15, 15]), POLICY)
    assert result.verdict is Verdict.PASS
    assert sign_test_p(3, 5) == pytest.approx(0.5) and sign_test_p(5, 5) == pytest.approx(1 / 32)


def test_4xx_are_not_errors_for_the_relative_gate_either() -> None:
    head = [run_stats(endpoint(LIST, {1.0: 940, 20.0: 60}, client_errors=50)) for _ in range(FIVE)]
    assert compare(runs([20] * FIVE), head, POLICY).verdict is Verdict.PASS


def test_calibration_reports_the_aa_spread_and_false_positives() -> None:
    a = runs([20, 21, 19, 20, 22, 20])
    b = runs([21, 20, 20, 23, 20, 19])  # the same code: ratios 0.86 .. 1.15
    result = calibrate(a, b, POLICY, resamples=300)
    assert result.pairs == 6 and result.subsets == 300
    spread = result.endpoints[0]
    assert spread.ratios == pytest.approx([21 / 20, 20 / 21, 20 / 19, 23 / 20, 20 / 22, 19 / 20])
    assert spread.false_positive_share == 0
    assert 1.0 <= spread.ratio_95 <= 23 / 20
    assert calibrate(a, b, POLICY, resamples=300) == result  # seeded: a re-judge gives the same figures
    assert result.suggested_max_ratio == pytest.approx(math.ceil(spread.ratio_95 * 20) / 20)
    text = calibration_markdown(result, POLICY)
    assert "## Relative mode calibration: A/A, 6 interleaved pairs of the same commit" in text
    assert "| `GET /api/v1/projects` | 1.05, 0.95, 1.05, 1.15, 0.91, 0.95 |" in text
    assert f"Suggested: `--max-ratio {result.suggested_max_ratio}`" in text
    with pytest.raises(ValueError, match="at least 5"):
        calibrate(a[:4], b[:4], POLICY)


def test_a_noisy_runner_shows_false_positives_in_calibration() -> None:
    # A runner whose B side is 40 % slower in every pair (e.g. a second noisy tenant): A/A flags it.
    result = calibrate(runs([20] * 6), runs([28] * 6), POLICY, resamples=50)
    assert result.endpoints[0].false_positive_share == 1.0
    assert result.suggested_max_ratio == pytest.approx(1.4)


def test_calibration_states_how_busy_the_runner_was() -> None:
    a = [replace(r, foreign_cpu_cores=0.5) for r in runs([20] * 6)]
    b = [replace(r, foreign_cpu_cores=1.5) for r in runs([20] * 6)]
    text = calibration_markdown(calibrate(a, b, POLICY, resamples=20), POLICY)
    assert "Other processes used 1.00 CPU cores (median; up to 1.50) during the runs" in text


def test_earlier_runs_can_be_judged_again(tmp_path: Path) -> None:
    for pair, (a, b) in enumerate(zip(runs([20] * FIVE), runs([30] * FIVE), strict=True), start=1):
        for side, stats in (("base", a), ("head", b)):
            (tmp_path / f"{pair}-{side}").mkdir()
            (tmp_path / f"{pair}-{side}" / "raw.json").write_text(json.dumps(raw_json(stats)))
    base, head = load_pairs(tmp_path)
    assert len(base) == len(head) == FIVE
    assert compare(base, head, POLICY).verdict is Verdict.BREACH
    with pytest.raises(ValueError, match=r"no <pair>-base/raw\.json runs"):
        load_pairs(tmp_path / "nowhere")


def raw_json(stats: RunStats) -> dict[str, object]:
    """What the locustfile writes, for the fields the comparison reads."""
    return {
        "host": stats.host,
        "plan": stats.plan.to_json(),
        "measured_seconds": stats.measured_seconds,
        "cpu_warning": stats.cpu_warning,
        "endpoints": [
            {
                "method": e.method,
                "name": e.name,
                "num_requests": e.num_requests,
                "num_failures": e.num_failures,
                "response_times": {str(k): v for k, v in e.response_times.items()},
                "sli": e.sli.to_json() if e.sli else None,
            }
            for e in stats.endpoints
        ],
    }
