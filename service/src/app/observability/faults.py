"""Fault injection for the alerting end-to-end test: answer a share of API requests with 500.

Off by default (FAULT_INJECTION_ERROR_RATIO=0: create_app does not even add the dependency);
Settings refuses it in staging and prod.
It runs as a dependency of the /api routers (after routing), so the injected 500s carry
the real route label, and probes and scrapes keep working while alerts fire.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

from app.kernel.errors import ApplicationError


class InjectedFaultError(ApplicationError):
    code = "injected_fault"


def fault_injector(ratio: float) -> Callable[[], Awaitable[None]]:
    """A route dependency that fails `ratio` of the requests it sees."""

    async def inject_faults() -> None:
        if random.random() < ratio:  # noqa: S311 - not security relevant
            raise InjectedFaultError("Injected fault")

    return inject_faults
