"""Webhook signatures: what `verify_signature` accepts and what it refuses, and why."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from app.outbox.webhook import InvalidSignature, sign, verify_signature

SECRET = "whk-" + "s" * 40
EVENT_ID = "0b7e4a52-6a43-4c9e-9d0e-3f1f5b2a7c11"
SENT_AT = 1_700_000_000
BODY = b'{"eventId":"0b7e4a52-6a43-4c9e-9d0e-3f1f5b2a7c11","data":{"name":"Apollo"}}'


def signed_headers(secret: str = SECRET, body: bytes = BODY, timestamp: int = SENT_AT) -> dict[str, str]:
    return {
        "Webhook-Id": EVENT_ID,
        "Webhook-Timestamp": str(timestamp),
        "Webhook-Signature": sign(secret, EVENT_ID, timestamp, body),
    }


def test_the_signature_is_the_documented_hmac_so_any_receiver_can_recompute_it() -> None:
    digest = hmac.new(SECRET.encode(), f"{EVENT_ID}.{SENT_AT}.".encode() + BODY, hashlib.sha256).digest()
    assert sign(SECRET, EVENT_ID, SENT_AT, BODY) == "v1," + base64.b64encode(digest).decode()


def test_a_genuine_recent_request_verifies_whatever_the_header_case() -> None:
    verify_signature(SECRET, signed_headers(), BODY, now=SENT_AT + 299)
    lowered = {name.lower(): value for name, value in signed_headers().items()}
    verify_signature(SECRET, lowered, BODY, now=SENT_AT - 299)  # a receiver clock slightly behind


def test_one_matching_signature_among_several_is_enough_during_a_secret_rotation() -> None:
    headers = signed_headers()
    headers["Webhook-Signature"] = (
        f"{sign('old-' + SECRET, EVENT_ID, SENT_AT, BODY)} {headers['Webhook-Signature']}"
    )
    verify_signature(SECRET, headers, BODY, now=SENT_AT)


@pytest.mark.parametrize(
    ("headers", "body", "reason"),
    [
        (signed_headers(), BODY.replace(b"Apollo", b"Apollx"), "does not match"),
        (signed_headers(body=BODY + b" "), BODY, "does not match"),
        (signed_headers(secret="another-" + SECRET), BODY, "does not match"),
        ({**signed_headers(), "Webhook-Id": "another-event"}, BODY, "does not match"),
        ({**signed_headers(), "Webhook-Signature": "v1,"}, BODY, "does not match"),
        # The timestamp is signed: moving it forward to pass the freshness check breaks the HMAC.
        ({**signed_headers(), "Webhook-Timestamp": str(SENT_AT + 1)}, BODY, "does not match"),
        ({**signed_headers(), "Webhook-Timestamp": "yesterday"}, BODY, "not unix seconds"),
    ],
    ids=["tampered-body", "other-bytes", "wrong-secret", "other-id", "empty", "moved-timestamp", "bad-ts"],
)
def test_a_forged_or_altered_request_is_refused(headers: dict[str, str], body: bytes, reason: str) -> None:
    with pytest.raises(InvalidSignature, match=reason):
        verify_signature(SECRET, headers, body, now=SENT_AT)


@pytest.mark.parametrize("received_at", [SENT_AT + 301, SENT_AT - 301])
def test_a_stale_or_future_timestamp_is_refused_even_when_correctly_signed(received_at: int) -> None:
    with pytest.raises(InvalidSignature, match=r"Webhook-Timestamp is [+-]301 s .*tolerance 300 s"):
        verify_signature(SECRET, signed_headers(), BODY, now=received_at)
    verify_signature(SECRET, signed_headers(), BODY, now=received_at, tolerance_seconds=600)


@pytest.mark.parametrize("header", ["Webhook-Id", "Webhook-Timestamp", "Webhook-Signature"])
def test_a_missing_header_is_refused_by_name(header: str) -> None:
    headers = signed_headers()
    del headers[header]
    with pytest.raises(InvalidSignature, match=f"missing header\\(s\\): {header}$"):
        verify_signature(SECRET, headers, BODY, now=SENT_AT)


def test_an_unsigned_request_is_refused() -> None:
    with pytest.raises(InvalidSignature, match="missing header"):
        verify_signature(SECRET, {"X-Event-ID": EVENT_ID}, BODY)
