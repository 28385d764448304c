"""kit.cli.kube.wait_for: the polling behind `kit db-shell` (pod start) and `kit dead-letters` (job end)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from kit.cli import kube
from kit.cli.errors import FAILED, KitError


def reads(*phases: str) -> Iterator[dict[str, Any]]:
    yield from ({"phase": phase} for phase in phases)


def wait(phases: Iterator[dict[str, Any]], timeout: float = 60.0) -> Any:
    return kube.wait_for(
        "starting",
        lambda: next(phases),
        done=lambda pod: pod["phase"] == "Running",
        describe=lambda pod: pod["phase"],
        timeout=timeout,
        error=lambda pod: KitError(f"did not start: {pod['phase']}", FAILED),
        stuck=lambda pod: pod["phase"] == "Failed",
    )


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(kube.time, "sleep", slept.append)
    return slept


def test_returns_the_first_read_that_is_done(no_sleep: list[float]) -> None:
    assert wait(reads("Pending", "Pending", "Running", "Failed")) == {"phase": "Running"}
    assert no_sleep == [1.0, 1.0]


def test_a_stuck_read_raises_its_error_at_once(no_sleep: list[float]) -> None:
    with pytest.raises(KitError) as caught:
        wait(reads("Pending", "Failed", "Running"))
    assert (caught.value.message, caught.value.code) == ("did not start: Failed", FAILED)
    assert no_sleep == [1.0]


def test_past_the_timeout_the_last_read_gives_the_error(no_sleep: list[float]) -> None:
    with pytest.raises(KitError) as caught:
        wait(reads("Pending", "ContainerCreating"), timeout=-1.0)
    assert caught.value.message == "did not start: Pending"
    assert no_sleep == []
