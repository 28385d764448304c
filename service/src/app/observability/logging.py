"""Structured JSON logs for the app, uvicorn and SQLAlchemy: one object per line on stdout.

Every line carries the request id (and user id when known) of the request that
produced it, and the trace and span ids when tracing is on. Secrets never reach a
line: values under sensitive keys are redacted, and bearer tokens or JWTs inside
free text (messages, stack traces) are scrubbed.

Levels: `error` for 5xx responses and failures that need an operator, `warning` for a
degraded dependency or unsafe configuration, `info` for lifecycle events and the
access line of every other request (a 4xx is the client's business: alerts key on
metrics, not on log levels), `debug` for detail.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from app.kernel.request_context import current_request_id, current_user_id

_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's ANSI-coloured copy of the message
}
SENSITIVE_KEYS = frozenset(
    {
        "password",
        "authorization",
        "cookie",
        "set_cookie",
        "token",
        "access_token",
        "accesstoken",
        "jwt_secret",
        "secret",
        "refresh_token",
        "password_hash",
    }
)
REDACTED = "[redacted]"
# Free text can carry credentials too (an exception quoting a header, a URL with a token).
_SECRET_IN_TEXT = re.compile(
    r"(?i)(bearer\s+)[^\s'\"]+|eyJ[\w-]+\.[\w-]+\.[\w-]*|((?:password|token|secret)=)[^\s&'\"]+"
)

# Set by app.observability.tracing when tracing is on: returns (trace_id, span_id) or None.
TraceIds = Callable[[], tuple[str, str] | None]
_trace_ids: TraceIds | None = None


def set_trace_ids_provider(provider: TraceIds | None) -> None:
    global _trace_ids
    _trace_ids = provider


def _scrub_text(text: str) -> str:
    # Cheap substring tests first: almost no line needs the (slower) regex.
    if "eyJ" not in text and "=" not in text and "earer" not in text.lower():
        return text
    return _SECRET_IN_TEXT.sub(lambda m: (m.group(1) or m.group(2) or "") + REDACTED, text)


def _redact(value: Any, key: str = "") -> Any:
    if key.lower().replace("-", "_") in SENSITIVE_KEYS:
        return REDACTED
    if isinstance(value, dict):
        return {k: _redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v) for v in value]
    if isinstance(value, str):
        return _scrub_text(value)
    return value


_UNICODE_LINE_BREAKS = frozenset("\x85\u2028\u2029")  # orjson escapes the C0 ones itself
_LINE_BREAK_ESCAPES = {ord(char): f"\\u{ord(char):04x}" for char in _UNICODE_LINE_BREAKS}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC),  # orjson writes it, "Z" for UTC
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": _scrub_text(record.getMessage()),
        }
        if (request_id := current_request_id()) is not None:
            entry["request_id"] = request_id
        if (user_id := current_user_id()) is not None:
            entry["user_id"] = user_id
        if _trace_ids is not None and (ids := _trace_ids()) is not None:
            entry["trace_id"], entry["span_id"] = ids
        for key, value in record.__dict__.items():  # the `extra` fields, in the order given
            if key not in _STANDARD_ATTRS and not key.startswith("_") and value is not None:
                entry[key] = _redact(value, key)
        if record.exc_info:
            entry["exception"] = _scrub_text(self.formatException(record.exc_info))
        line = orjson.dumps(entry, default=str, option=orjson.OPT_UTC_Z).decode()
        # JSON may hold U+0085, U+2028 and U+2029 raw, but line-oriented readers (Python's
        # splitlines, many log shippers) break lines there: a client-chosen path could split
        # or forge a log line (found by fuzzing). Escaped, every record stays one line.
        return line.translate(_LINE_BREAK_ESCAPES) if _UNICODE_LINE_BREAKS.intersection(line) else line


def configure_logging(level: str = "INFO", json_output: bool = True, *, sql_echo: bool = False) -> None:
    """Route every logger (app, uvicorn, SQLAlchemy) to one stdout handler and one format."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        JsonFormatter() if json_output else logging.Formatter("%(levelname)s %(name)s %(message)s")
    )
    # No line shows the caller's file, thread or process: skip collecting them per record
    # (the "Optimization" table of the logging HOWTO).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "sqlalchemy", "sqlalchemy.engine"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # The edge middleware logs each request once; uvicorn's access log would double it.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # SQL statements only on request (DB_ECHO); the engine hides bound parameters anyway.
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO if sql_echo else logging.WARNING)
    logging.getLogger("sqlalchemy.pool").setLevel(logging.WARNING)
