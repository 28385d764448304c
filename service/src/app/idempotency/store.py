"""SQL implementation of the idempotency store, on the unit of work's connection."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.idempotency.port import IdempotencyRecord, StoredResponse
from app.idempotency.tables import idempotency_keys as keys
from app.kernel.errors import AuthenticationError

# Rows one purge deletes at most: a short transaction that holds few row locks.
PURGE_CHUNK_SIZE = 1000


def _to_record(row: Any) -> IdempotencyRecord:
    return IdempotencyRecord(
        user_id=row.user_id,
        key=row.key,
        request_hash=row.request_hash,
        response=StoredResponse(row.status_code, row.response_body, row.location),
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


class SqlIdempotencyStore:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def claim(self, record: IdempotencyRecord) -> IdempotencyRecord | None:
        now = record.created_at
        # A write first: on SQLite it takes the write lock at once (a concurrent request waits
        # here instead of failing later on a stale snapshot). It also drops this user's expired
        # keys, so an expired key is free again and old rows do not pile up.
        await self._conn.execute(
            delete(keys).where(keys.c.user_id == record.user_id, keys.c.expires_at <= now)
        )
        dialect = postgresql if self._conn.dialect.name == "postgresql" else sqlite
        # ON CONFLICT DO NOTHING waits for a concurrent uncommitted insert of the same key,
        # then does nothing if that transaction committed: the loser reads the winner's record.
        statement = (
            dialect.insert(keys)
            .values(
                user_id=record.user_id,
                key=record.key,
                request_hash=record.request_hash,
                status_code=record.response.status_code,
                response_body=record.response.body,
                location=record.response.location,
                created_at=record.created_at,
                expires_at=record.expires_at,
            )
            .on_conflict_do_nothing(index_elements=[keys.c.user_id, keys.c.key])
        )
        try:
            inserted = await self._conn.execute(statement)
        except IntegrityError as exc:
            # Only the user's foreign key can fail here: a validly signed token of a user that
            # no longer exists (the unit of work rolls back on the way out).
            raise AuthenticationError("The account this token belongs to no longer exists") from exc
        if inserted.rowcount == 1:
            return None
        row = (
            await self._conn.execute(
                select(keys).where(keys.c.user_id == record.user_id, keys.c.key == record.key)
            )
        ).one()
        return _to_record(row)


async def purge_expired_idempotency_keys(
    connection: AsyncConnection, now: datetime, *, limit: int = PURGE_CHUNK_SIZE
) -> int:
    """Delete up to `limit` expired keys of any user (one chunk of the worker's sweep).

    Returns the rows deleted; fewer than `limit` means no more are due. Rows a request has
    locked right now are skipped (PostgreSQL): most likely a claim deleting them itself.
    """
    expired = (
        select(keys.c.user_id, keys.c.key)
        .where(keys.c.expires_at <= now)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    result = await connection.execute(delete(keys).where(tuple_(keys.c.user_id, keys.c.key).in_(expired)))
    return result.rowcount
