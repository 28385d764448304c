"""Per-request context (request id, user id) carried in contextvars to every log line."""

from __future__ import annotations

import random
import re
from contextvars import ContextVar

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
_user_id: ContextVar[str | None] = ContextVar("user_id", default=None)

# Accept a caller's id only when it is short and plain: it lands in logs and headers.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def accept_or_generate_request_id(incoming: str | None) -> str:
    if incoming and _VALID_REQUEST_ID.match(incoming):
        return incoming
    # 128 random bits as 32 hex digits, like uuid4().hex. A request id must be unique, not
    # secret: the Mersenne Twister (seeded from os.urandom per process, reseeded after fork)
    # skips uuid4's getrandom syscall, ~7 us of every request in the benchmark.
    return f"{random.getrandbits(128):032x}"


def set_request_id(value: str | None) -> None:
    _request_id.set(value)


def current_request_id() -> str | None:
    return _request_id.get()


def set_user_id(value: str | None) -> None:
    _user_id.set(value)


def current_user_id() -> str | None:
    return _user_id.get()
