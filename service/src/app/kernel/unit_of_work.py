"""The unit of work: one transaction per use case, committed in exactly one place.

Application services open it as an async context manager and call `commit()`
once; leaving the block without committing rolls everything back. Repositories
only execute statements on the connection, they never commit.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self


class UnitOfWork(Protocol):
    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def commit(self) -> None: ...
