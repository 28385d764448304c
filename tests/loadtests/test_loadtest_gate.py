"""The gate's verdicts on synthetic runs: pass, breach, inconclusive, and what it says."""

from __future__ import annotations

from loadtests import gate, shapes
from loadtests.gate import ExitCode, Policy, Verdict
from loadtests.runstats import TimelinePoint
from loadtests.targets import load
from tests.loadtests.helpers import CREATE, LIST, endpoint, run_stats, targets

FAST = {5.0: 900, 8.0: 100}  # p95 8 ms
POLICY = Policy(min_samples=100)


def test_a_run_within_every_target_passes_with_exit_code_0() -> None:
    stats = run_stats(endpoint(LIST, FAST), endpoint(CREATE, {10.0: 200}))
    result = gate.evaluate(stats, targets(), POLICY)
    assert result.verdict is Verdict.PASS
    assert result.exit_code == ExitCode.PASS == 0
    assert result.summary().startswith("PASS: ci met its targets")


def test_a_p95_over_its_class_target_is_a_breach_with_exit_code_3() -> None:
    slow = {50.0: 900, 150.0: 100}  # p95 150 ms > 100 ms
    result = gate.evaluate(run_stats(endpoint(LIST, slow)), targets(p95_ms=100), POLICY)
    assert result.verdict is Verdict.BREACH
    assert result.exit_code == 3
    assert "GET /api/v1/projects: p95 150 ms over the 100 ms target of class read" in result.summary()


def test_p95_exactly_at_the_target_passes() -> None:
    result = gate.evaluate(run_stats(endpoint(LIST, {100.0: 1000})), targets(p95_ms=100), POLICY)
    assert result.verdict is Verdict.PASS


def test_p99_is_reported_but_never_fails_the_gate() -> None:
    tail = {5.0: 980, 900.0: 20}  # p95 5 ms, p99 900 ms >> 200 ms p99 target
    result = gate.evaluate(run_stats(endpoint(LIST, tail)), targets(), POLICY)
    assert result.verdict is Verdict.PASS
    p99 = next(c for c in result.checks if c.name == "p99")
    assert p99.verdict is Verdict.INFO and p99.observed == 900.0


def test_an_error_ratio_over_the_limit_is_a_breach() -> None:
    result = gate.evaluate(
        run_stats(endpoint(LIST, FAST, failures=20)), targets(max_error_ratio=0.01), POLICY
    )
    assert result.verdict is Verdict.BREACH
    assert "2.00% errors (20/1000), limit 1.00%" in result.summary()


def test_class_throughput_below_its_minimum_is_a_breach() -> None:
    # 1000 requests in 500 s = 2 req/s < 5 req/s
    result = gate.evaluate(run_stats(endpoint(LIST, FAST), seconds=500), targets(min_rps=5), POLICY)
    assert result.verdict is Verdict.BREACH
    assert "class read: 2.0 req/s is below the 5 req/s target" in result.summary()


def test_total_throughput_below_the_environment_minimum_is_a_breach() -> None:
    result = gate.evaluate(run_stats(endpoint(LIST, FAST)), targets(min_rps=None, total_rps=500), POLICY)
    assert result.verdict is Verdict.BREACH
    assert "all endpoints: 100.0 req/s is below the 500 req/s target" in result.summary()


def test_falling_behind_the_offered_schedule_is_a_breach() -> None:
    stats = run_stats(endpoint(LIST, FAST), planned=1000, executed=900)
    result = gate.evaluate(stats, targets(), POLICY)
    assert result.verdict is Verdict.BREACH
    assert "could not keep up with the offered rate" in result.summary()
    ok = gate.evaluate(run_stats(endpoint(LIST, FAST), planned=1000, executed=960), targets(), POLICY)
    assert ok.verdict is Verdict.PASS


def test_a_saturated_load_generator_makes_the_run_inconclusive_even_with_a_breach() -> None:
    slow = {500.0: 1000}
    result = gate.evaluate(run_stats(endpoint(LIST, slow), cpu_warning=True), targets(), POLICY)
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.exit_code == 4
    assert result.summary().startswith("INCONCLUSIVE: the ci figures cannot be trusted. run: Locust's CPU")


def test_too_few_samples_for_a_p95_is_inconclusive_not_pass() -> None:
    stats = run_stats(endpoint(LIST, FAST), endpoint(CREATE, {10.0: 40}))
    result = gate.evaluate(stats, targets(), POLICY)
    assert result.verdict is Verdict.INCONCLUSIVE
    assert "POST /api/v1/projects: 40 requests, fewer than the 100 a p95 needs" in result.summary()


def test_a_breach_elsewhere_outranks_an_endpoint_with_too_few_samples() -> None:
    stats = run_stats(endpoint(LIST, {500.0: 1000}), endpoint(CREATE, {10.0: 40}))
    assert gate.evaluate(stats, targets(), POLICY).verdict is Verdict.BREACH


def test_a_run_without_requests_is_inconclusive() -> None:
    result = gate.evaluate(run_stats(), targets(), POLICY)
    assert result.verdict is Verdict.INCONCLUSIVE
    assert "the run made no requests" in result.summary()


def test_routes_without_a_class_are_shown_but_not_gated() -> None:
    stats = run_stats(endpoint(LIST, FAST), endpoint(("GET", "/metrics"), {900.0: 5}))
    result = gate.evaluate(stats, targets(), POLICY)
    assert result.verdict is Verdict.PASS
    assert any(c.subject == "GET /metrics" and c.verdict is Verdict.INFO for c in result.checks)


def test_endpoints_called_only_in_the_warm_up_are_not_judged() -> None:
    stats = run_stats(endpoint(LIST, FAST), endpoint(CREATE, {}))
    result = gate.evaluate(stats, targets(), POLICY)
    assert result.verdict is Verdict.PASS
    assert any(c.subject == "POST /api/v1/projects" and "warm-up" in c.message for c in result.checks)


def test_smoke_policy_judges_errors_but_not_latency_or_throughput() -> None:
    slow = run_stats(endpoint(LIST, {900.0: 3}), seconds=1000)
    assert gate.evaluate(slow, targets(), gate.POLICIES["smoke"]).verdict is Verdict.PASS
    failing = run_stats(endpoint(LIST, {900.0: 3}, failures=1))
    assert gate.evaluate(failing, targets(), gate.POLICIES["smoke"]).verdict is Verdict.BREACH


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
