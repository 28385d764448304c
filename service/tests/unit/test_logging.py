from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from app.kernel.request_context import accept_or_generate_request_id, set_request_id, set_user_id
from app.observability.logging import JsonFormatter

RECORD_CREATED = 1_764_000_000.123456


def render(record_extra: dict[str, object], message: str = "event") -> dict[str, object]:
    record = logging.LogRecord("app.test", logging.INFO, __file__, 1, message, (), None)
    record.created = RECORD_CREATED
    for key, value in record_extra.items():
        setattr(record, key, value)
    return json.loads(JsonFormatter().format(record))  # type: ignore[no-any-return]


def test_a_line_is_one_json_object_with_the_request_context() -> None:
    set_request_id("req-1")
    set_user_id("user-9")
    try:
        line = render({"route": "/api/v1/projects", "status": 200})
    finally:
        set_request_id(None)
        set_user_id(None)
    assert line["request_id"] == "req-1"
    assert line["user_id"] == "user-9"
    assert line["level"] == "info"
    assert (line["route"], line["status"]) == ("/api/v1/projects", 200)
    # RFC 3339 in UTC with "Z", the record's own time (not the formatting time).
    stamp = str(line["timestamp"])
    assert stamp.endswith("Z")
    assert datetime.fromisoformat(stamp) == datetime.fromtimestamp(RECORD_CREATED, UTC)


def test_secrets_are_redacted_wherever_they_sit() -> None:
    line = render({"password": "hunter2hunter2", "headers": {"Authorization": "Bearer x", "Cookie": "a=b"}})
    text = json.dumps(line)
    assert "hunter2" not in text and "Bearer x" not in text and "a=b" not in text
    assert line["password"] == "[redacted]"


def test_request_ids_are_accepted_only_when_well_formed() -> None:
    assert accept_or_generate_request_id("abc-123_x.y:z") == "abc-123_x.y:z"
    generated = accept_or_generate_request_id("bad id\nwith newline")
    assert len(generated) == 32 and generated.isalnum()
    assert accept_or_generate_request_id("x" * 200) != "x" * 200
    assert accept_or_generate_request_id(None) != accept_or_generate_request_id(None)


def test_unicode_line_breaks_from_a_client_never_split_a_log_line() -> None:
    """Found by fuzzing: a request path with U+0085 or U+2028 split its access-log line."""
    forged = '/api/v1/x\x85{"level":"error","message":"forged"}\u2028\u2029'
    record = logging.LogRecord("app.access", logging.INFO, __file__, 1, "request", None, None)
    record.path = forged
    line = JsonFormatter().format(record)
    assert line.splitlines() == [line]
    assert json.loads(line)["path"] == forged
