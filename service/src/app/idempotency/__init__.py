"""Storage of idempotency keys (the port and its rules live in app.idempotency.port)."""
