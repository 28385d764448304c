"""Load shapes and run statistics: pure functions, no Locust."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from loadtests import shapes
from loadtests.runstats import bucket_ms, merge, percentile


def test_fixed_plan_warms_up_then_holds_the_users_then_stops() -> None:
    plan = shapes.fixed(rate_rps=100, measure_seconds=20, warmup_seconds=5)
    users = plan.steps[0].users
    assert users == shapes.users_for_rate(100)
    background = plan.background_users
    assert plan.tick(0) == (users + background, float(users))
    assert plan.tick(4.9)[0] == plan.tick(24.9)[0] == users + background  # type: ignore[index]
    assert plan.tick(25.0) is None
    assert plan.measured_seconds == 20 and plan.duration == 25


def test_users_offer_the_requested_rate_through_the_pacing() -> None:
    users = shapes.users_for_rate(200)
    offered = sum(shapes.route_rates(users / shapes.PACING_SECONDS, background_users=0).values())
    assert 200 <= offered < 200 + shapes.expected_requests_per_task() / shapes.PACING_SECONDS


def test_route_rates_follow_the_mix() -> None:
    rates = shapes.route_rates(10.0, background_users=0)
    member_share = shapes.MEMBER_WEIGHT / (shapes.MEMBER_WEIGHT + shapes.MANAGER_WEIGHT)
    member_lists = 10.0 * member_share * shapes.MEMBER_TASKS["list"] / sum(shapes.MEMBER_TASKS.values())
    manager_lists = (
        10.0 * (1 - member_share) * shapes.MANAGER_TASKS["list"] / sum(shapes.MANAGER_TASKS.values())
    )
    assert rates[f"GET {shapes.PROJECTS}"] == pytest.approx(
        (member_lists + manager_lists) * shapes.LIST_PAGES
    )
    assert rates[f"POST {shapes.LOGIN}"] == rates[f"POST {shapes.LOGOUT}"] > 0
    assert rates["GET /health/live"] == 0
    assert shapes.route_rates(0.0, background_users=2)["GET /health/live"] == 2.0


def test_step_plan_raises_the_rate_each_step() -> None:
    plan = shapes.step(start_rps=50, step_rps=50, steps=4, step_seconds=10, warmup_seconds=5)
    assert [s.rate_rps for s in plan.steps] == [50, 100, 150, 200]
    assert [s.start for s in plan.steps] == [5, 15, 25, 35]
    assert plan.tick(16)[0] == plan.steps[1].users + plan.background_users  # type: ignore[index]
    assert plan.tick(45) is None


def test_plans_survive_the_trip_through_json() -> None:
    bounded = replace(shapes.fixed(80, 30), latency_bounds_ms=(100.0, 250.0))
    for plan in (shapes.fixed(80, 30), shapes.step(10, 10, 3, 5), shapes.smoke(), bounded):
        assert shapes.Plan.from_json(json.loads(json.dumps(plan.to_json()))) == plan


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: shapes.fixed(0, 10), "rate_rps must be positive"),
        (lambda: shapes.fixed(10, -1), "measure_seconds must be positive"),
        (lambda: shapes.fixed(10, 10, warmup_seconds=-1), "warmup_seconds must not be negative"),
        (lambda: shapes.step(10, 10, 0, 5), "steps must be positive"),
    ],
)
def test_nonsense_plans_are_refused(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]


def test_latency_buckets_keep_three_significant_digits() -> None:
    assert bucket_ms(2.3456) == 2.35
    assert bucket_ms(23.456) == 23.5
    assert bucket_ms(234.56) == 235
    assert bucket_ms(2345.6) == 2350
    assert bucket_ms(0) == 0


def test_percentile_is_nearest_rank_over_the_histogram() -> None:
    hist = {1.0: 90, 2.0: 5, 10.0: 5}
    assert percentile(hist, 0.5) == 1.0
    assert percentile(hist, 0.95) == 2.0
    assert percentile(hist, 0.96) == 10.0
    assert percentile({}, 0.95) is None
    assert merge([{1.0: 1}, {1.0: 2, 3.0: 1}]) == {1.0: 3, 3.0: 1}
