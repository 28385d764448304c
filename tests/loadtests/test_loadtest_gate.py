"""The gate's verdicts on synthetic runs: the SLIs against the objectives, and what it says.

The test targets put read and write in the SLO (99 % under 250 ms, 99 % availability) and
health outside it; with 2 SLO classes the gate judges 6 SLIs, so each gets 1/6 of the 1 %
false-breach share, and a judged SLI needs 238 requests to rule out a 6x burn.
"""

from __future__ import annotations

import pytest

from loadtests import gate, shapes, sli
from loadtests.gate import ExitCode, Policy, Verdict
from loadtests.runstats import TimelinePoint
from loadtests.targets import load
from tests.loadtests.helpers import CREATE, LIST, LIVE, endpoint, run_stats, targets

POLICY = Policy()
HEALTHY_READS = {5.0: 4975, 300.0: 25}  # 5000 requests, 0.5 % over 250 ms: half the budget
HEALTHY_WRITES = {10.0: 995, 400.0: 5}


def check(result: gate.GateResult, subject: str, name: str) -> gate.Check:
    return next(c for c in result.checks if c.subject == subject and c.name == name)


def test_a_service_within_its_budgets_passes_with_exit_code_0() -> None:
    stats = run_stats(endpoint(LIST, HEALTHY_READS), endpoint(CREATE, HEALTHY_WRITES))
    result = gate.evaluate(stats, targets(), POLICY)
    assert result.verdict is Verdict.PASS and result.exit_code == ExitCode.PASS == 0
    assert result.summary() == "PASS: ci met its SLOs (6 SLIs judged)."
    service = check(result, "service", "latency SLI")
    assert (service.requests, service.observed, service.limit) == (6000, 30 / 6000, pytest.approx(0.01))
    assert service.message.startswith("0.50% over its class threshold (30 of 6000; budget 1.00%): burn 0.5x")


def test_a_low_p95_does_not_hide_a_latency_slo_burn() -> None:
    # The review's L1 case: p95 90 ms (under the 100 ms reference) but 4 % of reads over 250 ms.
    reads = {90.0: 4800, 300.0: 200}
    result = gate.evaluate(run_stats(endpoint(LIST, reads)), targets(p95_ms=100), POLICY)
    assert result.verdict is Verdict.BREACH and result.exit_code == 3
    assert check(result, "GET /api/v1/projects", "p95").verdict is Verdict.INFO
    read = check(result, "class read", "latency SLI")
    assert read.verdict is Verdict.BREACH
    assert read.message.startswith("4.00% over 250 ms (200 of 5000; budget 1.00%): burn 4x")
    assert "burns the budget faster than 1x" in result.summary()


def test_p95_over_its_reference_is_a_regression_signal_not_the_verdict() -> None:
    reads = {5.0: 4700, 200.0: 300}  # p95 200 ms > 100 ms reference, nothing over 250 ms
    result = gate.evaluate(run_stats(endpoint(LIST, reads)), targets(p95_ms=100), POLICY)
    assert result.verdict is Verdict.PASS
    p95 = check(result, "GET /api/v1/projects", "p95")
    assert p95.verdict is Verdict.INFO and p95.observed == 200.0
    assert "over the 100 ms reference of class read; a regression signal, not the verdict" in p95.message
    assert check(result, "GET /api/v1/projects", "p99").verdict is Verdict.INFO


def test_one_error_on_a_small_endpoint_is_not_a_breach() -> None:
    # The review's L2 case: 209 requests, 1 error, a 0.1 % budget: the old gate failed here.
    stats = run_stats(endpoint(LIST, HEALTHY_READS), endpoint(CREATE, {10.0: 209}, failures=1))
    result = gate.evaluate(stats, targets(availability=0.999), POLICY)
    assert result.verdict is Verdict.PASS
    write = check(result, "class write", "availability SLI")
    assert write.verdict is Verdict.NOT_JUDGED and write.requests == 209
    assert "class write availability SLI (209 of" in result.summary()
    assert check(result, "service", "availability SLI").verdict is Verdict.PASS


def test_4xx_and_429_are_not_slo_errors() -> None:
    stats = run_stats(endpoint(LIST, HEALTHY_READS, client_errors=40, throttled=10))  # 1 % refused
    result = gate.evaluate(stats, targets(), POLICY)
    assert result.verdict is Verdict.PASS
    assert check(result, "class read", "availability SLI").observed == 0


def test_a_journey_refused_with_429_is_inconclusive_naming_the_rate_limits() -> None:
    stats = run_stats(endpoint(LIST, HEALTHY_READS, throttled=300))
    result = gate.evaluate(stats, targets(), POLICY)
    assert result.verdict is Verdict.INCONCLUSIVE and result.exit_code == 4
    journey = check(result, "GET /api/v1/projects", "journey")
    assert "0 answered 4xx and 300 429 of 5000: not SLO errors" in journey.message
    assert "rate limits for the load-test accounts" in journey.message


def test_5xx_and_unanswered_requests_burn_the_availability_budget() -> None:
    stats = run_stats(endpoint(LIST, HEALTHY_READS, failures=60, transport_errors=40))
    result = gate.evaluate(stats, targets(), POLICY)
    assert result.verdict is Verdict.BREACH
    availability = check(result, "class read", "availability SLI")
    assert availability.verdict is Verdict.BREACH and availability.observed == 100 / 5000
    errors = check(result, "GET /api/v1/projects", "errors")
    assert errors.message == "fails outright: 60 answered 5xx and 40 unanswered of 5000 (2.0%)"


def test_strong_evidence_breaches_below_the_minimum_sample() -> None:
    # 100 requests cannot show a service is healthy, but 10 errors in them show it is not.
    policy = Policy(gross_errors=1000)  # leave it to the SLI
    stats = run_stats(endpoint(LIST, HEALTHY_READS), endpoint(CREATE, {10.0: 100}, failures=10))
    result = gate.evaluate(stats, targets(), policy)
    write = check(result, "class write", "availability SLI")
    assert write.verdict is Verdict.BREACH and write.requests < (write.needed or 0)
    assert result.verdict is Verdict.BREACH
    few = gate.evaluate(
        run_stats(endpoint(LIST, HEALTHY_READS), endpoint(CREATE, {10.0: 100}, failures=1)), targets(), policy
    )
    assert check(few, "class write", "availability SLI").verdict is Verdict.NOT_JUDGED
    assert few.verdict is Verdict.PASS


def test_a_service_level_sli_with_too_few_requests_is_inconclusive_never_a_pass() -> None:
    result = gate.evaluate(run_stats(endpoint(LIST, {5.0: 150})), targets(), POLICY)
    assert result.verdict is Verdict.INCONCLUSIVE and result.exit_code == 4
    needed = sli.minimum_samples(0.01, 6.0, POLICY.sli_policy(targets()).confidence, 0.95)
    assert f"{needed} requests are needed to rule out a 6x burn" in result.summary()
    assert check(result, "class read", "latency SLI").verdict is Verdict.NOT_JUDGED


def test_classes_outside_the_slo_are_reported_not_gated() -> None:
    stats = run_stats(endpoint(LIST, HEALTHY_READS), endpoint(LIVE, {500.0: 300}))
    result = gate.evaluate(stats, targets(), POLICY)
    assert result.verdict is Verdict.PASS
    health = check(result, "class health", "latency SLI")
    assert health.verdict is Verdict.INFO and health.observed == 1.0
    assert health.message.endswith("(not in the SLO: shown, not gated)")


def test_the_false_breach_share_is_split_over_the_judged_slis() -> None:
    rules = Policy().sli_policy(targets())
    assert rules.confidence == pytest.approx(1 - 0.01 / 6) and rules.detect_burn == 6.0
    assert gate.SHORT.sli_policy(targets()).detect_burn == 14.4
    assert gate.POLICIES["smoke"].sli_policy(targets()).confidence == pytest.approx(1 - 0.01 / 3)


def test_falling_behind_the_offered_schedule_is_a_breach() -> None:
    stats = run_stats(endpoint(LIST, HEALTHY_READS), planned=1000, executed=900)
    result = gate.evaluate(stats, targets(), POLICY)
    assert result.verdict is Verdict.BREACH
    assert "kept 90.0% of the task schedule (at least 95% required): the service could not keep up" in (
        result.summary()
    )
    ok = gate.evaluate(
        run_stats(endpoint(LIST, HEALTHY_READS), planned=1000, executed=960), targets(), POLICY
    )
    assert ok.verdict is Verdict.PASS


def test_throughput_and_schedule_lag_are_reported_not_judged() -> None:
    stats = run_stats(endpoint(LIST, HEALTHY_READS), seconds=5000, schedule_lag_ms={0.0: 95, 120.0: 5})
    result = gate.evaluate(stats, targets(min_rps=5), POLICY)
    assert result.verdict is Verdict.PASS  # 1 req/s against 5 req/s: reported only
    assert check(result, "class read", "throughput").verdict is Verdict.INFO
    lag = check(result, "run", "schedule lag")
    assert lag.verdict is Verdict.INFO
    assert lag.message.startswith("5 of 100 tasks started behind schedule (p99 lag 120 ms, max 120 ms)")


def test_a_saturated_load_generator_makes_the_run_inconclusive_even_with_a_breach() -> None:
    result = gate.evaluate(run_stats(endpoint(LIST, {500.0: 1000}), cpu_warning=True), targets(), POLICY)
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.exit_code == 4
    assert result.summary().startswith("INCONCLUSIVE: the ci figures cannot be trusted. run: Locust's CPU")


def test_a_run_without_sli_counts_is_inconclusive() -> None:
    result = gate.evaluate(run_stats(endpoint(LIST, HEALTHY_READS, record_sli=False)), targets(), POLICY)
    assert result.verdict is Verdict.INCONCLUSIVE
    assert "the run did not count requests for the SLIs (GET /api/v1/projects)" in result.summary()


def test_a_run_without_requests_is_inconclusive() -> None:
    result = gate.evaluate(run_stats(), targets(), POLICY)
    assert result.verdict is Verdict.INCONCLUSIVE
    assert "the run made no requests" in result.summary()


def test_routes_without_a_class_are_shown_but_not_gated() -> None:
    stats = run_stats(endpoint(LIST, HEALTHY_READS), endpoint(("GET", "/metrics"), {900.0: 5}))
    result = gate.evaluate(stats, targets(), POLICY)
    assert result.verdict is Verdict.PASS
    assert check(result, "GET /metrics", "target").verdict is Verdict.INFO


def test_endpoints_called_only_in_the_warm_up_are_not_judged() -> None:
    stats = run_stats(endpoint(LIST, HEALTHY_READS), endpoint(CREATE, {}))
    result = gate.evaluate(stats, targets(), POLICY)
    assert result.verdict is Verdict.PASS
    assert "warm-up" in check(result, "POST /api/v1/projects", "samples").message


def test_smoke_policy_fails_on_any_server_error_but_does_not_judge_latency() -> None:
    slow = run_stats(endpoint(LIST, {900.0: 3}), seconds=1000)
    assert gate.evaluate(slow, targets(), gate.POLICIES["smoke"]).verdict is Verdict.PASS
    failing = run_stats(endpoint(LIST, {900.0: 3}, failures=1))
    result = gate.evaluate(failing, targets(), gate.POLICIES["smoke"])
    assert result.verdict is Verdict.BREACH
    assert "fails outright: 1 answered 5xx and 0 unanswered of 3" in result.summary()


def test_the_derived_rate_offers_every_class_its_minimum_throughput_with_headroom() -> None:
    ci = load("ci")
    rate = gate.rate_for_targets(ci, headroom=1.3)
    users = shapes.users_for_rate(rate)
    offered = shapes.route_rates(users / shapes.PACING_SECONDS)
    for class_name, target in ci.classes.items():
        routes = [r for r, c in ci.routes.items() if c == class_name]
        assert sum(offered.get(r, 0.0) for r in routes) >= 1.3 * (target.min_throughput_rps or 0)
    assert sum(offered.values()) >= 1.3 * (ci.min_throughput_rps or 0)


def test_capacity_knee_is_the_last_step_that_kept_up() -> None:
    plan = shapes.step(100, 100, 3, 5, warmup_seconds=0)

    def second(t: float, requests: int, p95: float) -> TimelinePoint:
        return TimelinePoint(t, 10, False, {p95: requests}, {})

    timeline = [second(t, 100, 5) for t in range(5)] + [second(t, 200, 6) for t in range(5, 10)]
    timeline += [second(t, 220, 80) for t in range(10, 15)]  # offered 300, achieved 220: saturated
    rows = gate.capacity_knee(run_stats(plan=plan, timeline=timeline))
    assert [r["keeps_up"] for r in rows] == [1.0, 1.0, 0.0]
    assert rows[2]["achieved_rps"] == 220 and rows[2]["p95_ms"] == 80


def test_latency_counts_requests_from_when_they_were_due() -> None:
    # 100 requests were fast when sent but their task started 300 ms late (coordinated omission).
    reads = endpoint(LIST, HEALTHY_READS)
    assert reads.sli is not None
    reads.sli.within_corrected_ms[250.0] -= 100
    result = gate.evaluate(run_stats(reads), targets(), POLICY)
    read = check(result, "class read", "latency SLI")
    assert read.verdict is Verdict.BREACH
    assert read.message.startswith("2.50% over 250 ms, 25 without the schedule-lag correction (125 of 5000;")
