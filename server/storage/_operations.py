"""Idempotency keys for PATCH and DELETE: the server remembers which operation made which
version, so a retry whose first answer was lost gets that answer again instead of a 409 against
its own change (a client's chain of edits can then never conflict with itself)."""

from __future__ import annotations

from typing import Any

from core import protocol as p

from .base import KeyReused

Conn = Any

# A refresh token's life: a device away for longer has to sign in again anyway.
OPERATION_RETENTION_MS = 30 * 86400_000


def replayed(conn: Conn, user_id: int, op_id: str | None, kind: str, cid: str) -> bytes | None:
    """The first answer to an operation already done (its retry must not 409 against itself)."""
    if op_id is None:
        return None
    row = conn.execute(
        "SELECT kind, target, result FROM operations WHERE user_id=? AND op_id=?",
        (user_id, op_id),
    ).fetchone()
    if row is None:
        return None
    if (row[0], row[1]) != (kind, cid):
        raise KeyReused("this Idempotency-Key was used for another request")
    return bytes(row[2])


def remember(
    conn: Conn,
    user_id: int,
    op_id: str | None,
    kind: str,
    cid: str,
    version: int,
    result: object,
    now: int,
) -> None:
    """Record the answer with the version it made; forget operations past the retention."""
    if op_id is None:
        return
    conn.execute(
        "INSERT INTO operations VALUES (?, ?, ?, ?, ?, ?, ?)",
        (user_id, op_id, kind, cid, version, p.encode(result), now),
    )
    conn.execute("DELETE FROM operations WHERE created_at<?", (now - OPERATION_RETENTION_MS,))
