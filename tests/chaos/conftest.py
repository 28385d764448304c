"""Fixtures of the fault-under-load scenarios (helpers in tests/chaos/harness.py); the figures
table is printed at the end of the run."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chaos.harness import Profile, profile_from_environment, summary_lines


@pytest.fixture(scope="session")
def profile() -> Profile:
    try:
        return profile_from_environment()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_terminal_summary(terminalreporter: Any) -> None:
    lines = summary_lines()
    if lines:
        terminalreporter.section(f"faults under load ({profile_from_environment().name} profile)")
        for line in lines:
            terminalreporter.write_line(line)
