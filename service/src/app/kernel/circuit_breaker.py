"""A small asyncio-friendly circuit breaker around one outbound dependency.

Closed: calls go through; `failure_threshold` consecutive failures open it.
Open: calls are refused without touching the dependency for `reset_seconds`.
Half-open: one trial call is let through; success closes, failure re-opens.

Written here rather than taken from a library: aiobreaker's last release is from 2021,
pybreaker's native asyncio call (`acall`) is an open pull request (danielfm/pybreaker#103,
#104) and its released async path needs Tornado, and purgatory brings shared-state
backends that a per-process breaker does not need. State is per process: each worker judges the dependency
from its own calls, which is what a breaker is for. The clock is injected
(monotonic by default) so tests can move time without sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import IntEnum


class CircuitState(IntEnum):
    """Values are the exported metric: circuit_breaker_state 0 closed, 1 half-open, 2 open."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


StateListener = Callable[[str, CircuitState], None]


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int,
        reset_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        on_state_change: StateListener | None = None,
    ) -> None:
        if failure_threshold < 1 or reset_seconds <= 0:
            raise ValueError("failure_threshold must be >= 1 and reset_seconds > 0")
        self.name = name
        self._threshold = failure_threshold
        self._reset_seconds = reset_seconds
        self._clock = clock
        self._listener = on_state_change
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        # When the half-open trial started; None while no trial is in flight.
        self._trial_started_at: float | None = None

    @property
    def state(self) -> CircuitState:
        # Open -> half-open happens by the passage of time, observed lazily.
        if self._state is CircuitState.OPEN and self._clock() - self._opened_at >= self._reset_seconds:
            self._move_to(CircuitState.HALF_OPEN)
        return self._state

    def seconds_until_trial(self) -> float:
        """How long callers should wait before the breaker lets a call through (0 when it would now)."""
        if self.state is CircuitState.OPEN:
            return max(0.0, self._opened_at + self._reset_seconds - self._clock())
        return 0.0

    def allow(self) -> bool:
        """Whether a call may go out now. In half-open, only one trial at a time is allowed."""
        state = self.state
        if state is CircuitState.CLOSED:
            return True
        if state is CircuitState.OPEN:
            return False
        now = self._clock()
        # A trial whose caller never reported back (cancelled) must not wedge the breaker.
        if self._trial_started_at is not None and now - self._trial_started_at < self._reset_seconds:
            return False
        self._trial_started_at = now
        return True

    def record_success(self) -> None:
        self._failures = 0
        self._trial_started_at = None
        if self._state is not CircuitState.CLOSED:
            self._move_to(CircuitState.CLOSED)

    def record_failure(self) -> None:
        self._trial_started_at = None
        if self._state is CircuitState.HALF_OPEN:
            self._open()
            return
        self._failures += 1
        if self._state is CircuitState.CLOSED and self._failures >= self._threshold:
            self._open()

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._failures = 0
        self._move_to(CircuitState.OPEN)

    def _move_to(self, state: CircuitState) -> None:
        self._state = state
        if self._listener is not None:
            self._listener(self.name, state)
