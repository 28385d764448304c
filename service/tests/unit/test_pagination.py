from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from app.kernel.errors import InvalidInputError
from app.kernel.pagination import Cursor


def test_a_cursor_round_trips() -> None:
    cursor = Cursor(datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC), uuid.uuid4())
    assert Cursor.decode(cursor.encode()) == cursor


@pytest.mark.parametrize(
    "token",
    ["", "not-base64!", "e30", "eyJjIjoiMjAyNi0wMS0wMlQwMzowNDowNSIsImkiOiJ4In0", "eyJjIjogMX0"],
)
def test_malformed_cursors_are_a_422_for_the_cursor_field(token: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        Cursor.decode(token)
    assert caught.value.details == {"cursor": ["is not a valid page cursor"]}


def test_a_naive_timestamp_in_a_cursor_is_refused() -> None:
    forged = Cursor(datetime(2026, 1, 1, tzinfo=UTC), uuid.uuid4()).encode()
    import base64
    import json

    data = json.loads(base64.urlsafe_b64decode(forged + "=" * (-len(forged) % 4)))
    data["c"] = "2026-01-01T00:00:00"
    naive = base64.urlsafe_b64encode(json.dumps(data).encode()).decode()
    with pytest.raises(InvalidInputError):
        Cursor.decode(naive)


def _encoded(payload: object) -> str:
    import base64

    import orjson

    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


@pytest.mark.parametrize(
    "payload",
    [
        # Security review M1: each of these was a 500 (AttributeError / OverflowError).
        {"c": "2026-01-01T00:00:00+00:00", "i": 1},
        {"c": "2026-01-01T00:00:00+00:00", "i": ["x"]},
        {"c": "2026-01-01T00:00:00+00:00", "i": {"a": 1}},
        {"c": "2026-01-01T00:00:00+00:00", "i": True},
        {"c": "0001-01-01T00:00:00+01:00", "i": str(uuid.uuid4())},
        {"c": "9999-12-31T23:59:59-01:00", "i": str(uuid.uuid4())},
        {"c": 20260101, "i": str(uuid.uuid4())},
        {"c": "2026-01-01T00:00:00+00:00", "i": str(uuid.uuid4()), "x": 1},
        [1, 2],
        "a string",
        None,
    ],
)
def test_tampered_cursor_contents_are_a_422(payload: object) -> None:
    with pytest.raises(InvalidInputError) as caught:
        Cursor.decode(_encoded(payload))
    assert caught.value.details == {"cursor": ["is not a valid page cursor"]}


def test_a_cursor_in_another_offset_is_read_in_utc() -> None:
    ident = uuid.uuid4()
    cursor = Cursor.decode(_encoded({"c": "2026-01-01T02:00:00+02:00", "i": str(ident)}))
    assert cursor.created_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert cursor.created_at.tzinfo is UTC
