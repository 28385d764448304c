"""The HTTP side of idempotency keys: the header, the request fingerprint, the replayed response."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated

from fastapi import Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.idempotency.port import IDEMPOTENCY_HEADER, KEY_MAX_LENGTH, IdempotentOutcome

REPLAYED_HEADER = "Idempotent-Replayed"

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias=IDEMPOTENCY_HEADER,
        min_length=1,
        max_length=KEY_MAX_LENGTH,
        # Visible ASCII only: the key is stored and compared byte for byte.
        pattern=r"^[\x21-\x7e]+$",
        description=(
            "Makes the request safe to retry: a retry with the same key and body returns the "
            "first response and creates nothing; the same key with another body is refused (422). "
            "Keys are per user, 1-255 visible ASCII characters (a UUID is a good choice), and "
            "expire after IDEMPOTENCY_TTL_SECONDS."
        ),
    ),
]


def request_fingerprint(request: Request, body: BaseModel) -> str:
    """Method, path and the validated body in canonical form: key order and spacing do not matter."""
    canonical = json.dumps(
        {"method": request.method, "path": request.url.path, "body": body.model_dump(mode="json")},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def outcome_response(outcome: IdempotentOutcome) -> JSONResponse:
    stored = outcome.response
    headers = {"Location": stored.location} if stored.location else {}
    if outcome.replayed:
        headers[REPLAYED_HEADER] = "true"
    return JSONResponse(stored.body, status_code=stored.status_code, headers=headers)
