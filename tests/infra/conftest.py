"""Fixtures of the Pulumi program tests: each stack's mock run, once per session."""

from __future__ import annotations

import pytest

from tests.infra.support import STACKS, Run, run_stack


@pytest.fixture(scope="session")
def runs() -> dict[str, Run]:
    """dev, staging, prod and pr-123, each run with its own stack file (the slow part: ~20 s)."""
    return {stack: run_stack(stack) for stack in STACKS}
