"""The operators' account rules (``concord-server user …``, docs/architecture.md §4.7) in portable
DB-API SQL: each function runs inside the caller's transaction on ``conn``, an ``sqlite3``
connection or, on PostgreSQL, the qmark connection :func:`postgres_transaction` yields — the
same rules on both engines, as :mod:`._sessions` (whose revocation they use).

Removing an account disables it (:data:`DISABLED_HASH`): the name and the history stay, so nobody
can take the name over and speak as this person in old conversations.
"""

from __future__ import annotations

import importlib
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from . import _sessions
from .factory import EXTRA_HINT, MissingExtra, describe

DISABLED_HASH = "!disabled"  # no scrypt hash: every password check fails


class DatabaseUnavailable(RuntimeError):
    """The PostgreSQL server cannot be reached, or the database has no Concord schema."""


@dataclass(frozen=True)
class UserRow:
    name: str
    created_at_ms: int
    sessions: int  # live sessions: signed-in devices
    active: bool


def list_users(conn: sqlite3.Connection, now: int) -> list[UserRow]:
    """Every account by name, with its live sessions (not revoked, refresh token not expired)."""
    rows = conn.execute(
        "SELECT username, created_at, password_hash,"
        " (SELECT count(*) FROM sessions s WHERE s.user_id=u.id AND s.revoked_at IS NULL"
        "  AND s.refresh_expires_at > ?)"
        " FROM users u ORDER BY username",
        (now,),
    ).fetchall()
    return [UserRow(r[0], int(r[1]), int(r[3]), r[2] != DISABLED_HASH) for r in rows]


def user_id(conn: sqlite3.Connection, name: str) -> int | None:
    row = conn.execute("SELECT id FROM users WHERE username=?", (name,)).fetchone()
    return None if row is None else int(row[0])


def revoke_all(conn: sqlite3.Connection, uid: int, now: int) -> int:
    """End every session of the user; returns how many (signed-in devices) ended. Refreshing
    fails at once; running servers stop trusting a checked access token within
    ``token_recheck_s`` (§4.9)."""
    return _sessions.revoke_sessions(conn, uid, None, now)


def set_password_hash(conn: sqlite3.Connection, uid: int, password_hash: str, now: int) -> int:
    """Replace the password hash and revoke every session (returns how many)."""
    conn.execute("UPDATE users SET password_hash=? WHERE id=?", (password_hash, uid))
    return revoke_all(conn, uid, now)


@contextmanager
def postgres_transaction(url: str) -> Iterator[Any]:
    """One transaction (READ COMMITTED) on the PostgreSQL database ``url``, as a qmark connection
    for the functions above. Raises :class:`~.factory.MissingExtra` without psycopg, and
    :class:`DatabaseUnavailable` when the server cannot be reached or the schema is missing
    (``concord-server migrate`` creates it)."""
    try:  # by name, as the factory: a plain install has no psycopg
        psycopg = importlib.import_module("psycopg")
        access = importlib.import_module(f"{__package__}._pg_access")
    except ImportError as exc:
        raise MissingExtra(
            f"PostgreSQL storage needs the concord[scale] extra ({EXTRA_HINT}): {exc}"
        ) from exc
    where = describe(url)
    try:
        raw = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"cannot connect to {where}: {exc}".strip()) from None
    with raw, raw.transaction():
        if not raw.execute("SELECT to_regclass('users') IS NOT NULL").fetchone()[0]:
            raise DatabaseUnavailable(
                f"no Concord database at {where} (create it with concord-server migrate)"
            )
        yield access.QmarkConnection(raw)
