"""The circuit breaker's state machine, driven by an injected clock (no sleeping)."""

from __future__ import annotations

import pytest

from app.kernel.circuit_breaker import CircuitBreaker, CircuitState
from app.outbox.relay import backoff_delay


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def transitions() -> list[CircuitState]:
    return []


@pytest.fixture
def breaker(clock: FakeClock, transitions: list[CircuitState]) -> CircuitBreaker:
    return CircuitBreaker(
        "webhook",
        failure_threshold=3,
        reset_seconds=10,
        clock=clock,
        on_state_change=lambda _name, state: transitions.append(state),
    )


def test_stays_closed_below_the_threshold_and_a_success_resets_the_count(breaker: CircuitBreaker) -> None:
    for _ in range(2):
        breaker.record_failure()
    breaker.record_success()
    for _ in range(2):
        breaker.record_failure()
    assert breaker.state is CircuitState.CLOSED
    assert breaker.allow()


def test_opens_at_the_threshold_and_refuses_calls_until_the_reset_time(
    breaker: CircuitBreaker, clock: FakeClock, transitions: list[CircuitState]
) -> None:
    for _ in range(3):
        breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    assert transitions == [CircuitState.OPEN]
    assert not breaker.allow()
    clock.now += 4
    assert breaker.seconds_until_trial() == pytest.approx(6)
    assert not breaker.allow()


def test_half_opens_after_the_reset_time_and_lets_one_trial_through(
    breaker: CircuitBreaker, clock: FakeClock, transitions: list[CircuitState]
) -> None:
    for _ in range(3):
        breaker.record_failure()
    clock.now += 10
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.seconds_until_trial() == 0
    assert breaker.allow()
    assert not breaker.allow(), "a second concurrent trial is refused"
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED
    assert transitions == [CircuitState.OPEN, CircuitState.HALF_OPEN, CircuitState.CLOSED]


def test_a_failed_trial_opens_again_for_a_full_reset_period(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    for _ in range(3):
        breaker.record_failure()
    clock.now += 10
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    clock.now += 9.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.state is CircuitState.HALF_OPEN


def test_a_trial_that_never_reports_back_does_not_wedge_the_breaker(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    for _ in range(3):
        breaker.record_failure()
    clock.now += 10
    assert breaker.allow()
    clock.now += 10  # the trial's caller was cancelled and never recorded an outcome
    assert breaker.allow()


def test_late_failures_while_open_do_not_extend_the_open_period(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    for _ in range(3):
        breaker.record_failure()
    clock.now += 5
    breaker.record_failure()  # a call that was in flight when the breaker opened
    clock.now += 5
    assert breaker.state is CircuitState.HALF_OPEN


@pytest.mark.parametrize(("threshold", "reset"), [(0, 1.0), (1, 0.0)])
def test_refuses_meaningless_parameters(threshold: int, reset: float) -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreaker("x", failure_threshold=threshold, reset_seconds=reset)


def test_backoff_ceiling_doubles_per_attempt_up_to_the_cap() -> None:
    ceilings = [backoff_delay(n, base=0.5, cap=5.0, rand=lambda: 1.0) for n in range(1, 7)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


@pytest.mark.parametrize("draw", [0.0, 0.25, 0.999])
def test_backoff_is_full_jitter_below_the_ceiling(draw: float) -> None:
    assert backoff_delay(3, base=1.0, cap=100.0, rand=lambda: draw) == pytest.approx(4.0 * draw)
