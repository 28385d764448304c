"""argon2id password hashing, off the event loop.

Parameters follow the OWASP Password Storage Cheat Sheet's first argon2id
option (m=19 MiB, t=2, p=1): strong, yet about 20 ms of one core per hash,
so a login costs little and one core sustains dozens per second.
"""

from __future__ import annotations

import anyio
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

OWASP_MEMORY_COST_KIB = 19 * 1024
OWASP_TIME_COST = 2
OWASP_PARALLELISM = 1


def owasp_argon2id() -> PasswordHash:
    return PasswordHash(
        (
            Argon2Hasher(
                memory_cost=OWASP_MEMORY_COST_KIB,
                time_cost=OWASP_TIME_COST,
                parallelism=OWASP_PARALLELISM,
            ),
        )
    )


class Argon2PasswordHasher:
    def __init__(self, concurrency: int = 1) -> None:
        self._hash = owasp_argon2id()
        # Caps concurrent hashes: a login burst queues instead of starving the CPU.
        self._limiter = anyio.CapacityLimiter(concurrency)

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._hash.hash, password, limiter=self._limiter)

    async def verify(self, password: str, password_hash: str) -> tuple[bool, str | None]:
        return await anyio.to_thread.run_sync(
            self._hash.verify_and_update, password, password_hash, limiter=self._limiter
        )
