"""Sessions and their tokens in SQLite (docs/architecture.md §4.9): each function runs inside
the caller's transaction on ``conn``.

A session is one sign-in of one device. It holds the hash of its current refresh token and of the
one that token replaced (for the grace window); access tokens live in ``tokens`` with their
session. Tokens are stored only as SHA-256 hashes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from .base import NewSession, Rotated, Rotation, TokenInfo

DAY_MS = 86_400_000


def _forget_old(conn: sqlite3.Connection, now: int) -> None:
    """Expired access tokens and sessions whose refresh token expired a day ago (a day: so a
    token presented just after its expiry is still told apart from a forged one in the logs)."""
    conn.execute("DELETE FROM tokens WHERE expires_at < ?", (now - DAY_MS,))
    conn.execute("DELETE FROM sessions WHERE refresh_expires_at < ?", (now - DAY_MS,))


def start_session(
    conn: sqlite3.Connection, session: str, user_id: int, tokens: NewSession, now: int
) -> None:
    _forget_old(conn, now)
    conn.execute(
        "INSERT INTO sessions (id, user_id, created_at, refresh_hash, refresh_expires_at,"
        " access_expires_at) VALUES (?, ?, ?, ?, ?, ?)",
        (
            session,
            user_id,
            now,
            tokens.refresh_hash,
            tokens.refresh_expires_at,
            tokens.access_expires_at,
        ),
    )
    _put_access(conn, user_id, session, tokens)


def _put_access(conn: sqlite3.Connection, user_id: int, session: str, tokens: NewSession) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO tokens (hash, user_id, kind, expires_at, session)"
        " VALUES (?, ?, 'access', ?, ?)",
        (tokens.access_hash, user_id, tokens.access_expires_at, session),
    )


def _revoke(conn: sqlite3.Connection, where: str, args: tuple[object, ...], now: int) -> int:
    ids = [
        r[0]
        for r in conn.execute(
            f"SELECT id FROM sessions WHERE {where} AND revoked_at IS NULL", args
        ).fetchall()
    ]
    for sid in ids:
        conn.execute("UPDATE sessions SET revoked_at=? WHERE id=?", (now, sid))
        conn.execute("DELETE FROM tokens WHERE session=?", (sid,))
    return len(ids)


def revoke_sessions(conn: sqlite3.Connection, user_id: int, session: str | None, now: int) -> int:
    if session is None:
        n = _revoke(conn, "user_id=?", (user_id,), now)
        # Access tokens from before sessions had ids (schema 4) end too.
        conn.execute("DELETE FROM tokens WHERE user_id=?", (user_id,))
        return n
    return _revoke(conn, "user_id=? AND id=?", (user_id, session), now)


def _user(conn: sqlite3.Connection, user_id: int, expires_at: int, session: str) -> TokenInfo:
    (username,) = conn.execute("SELECT username FROM users WHERE id=?", (user_id,)).fetchone()
    return TokenInfo(user_id, username, expires_at, session)


def rotate_refresh(
    conn: sqlite3.Connection,
    refresh_hash: str,
    session_hint: str,
    successor: Callable[[str, int], NewSession],
    now: int,
    grace_ms: int,
) -> Rotation:
    row = conn.execute(
        "SELECT id, user_id, refresh_expires_at, revoked_at, generation FROM sessions"
        " WHERE refresh_hash=?",
        (refresh_hash,),
    ).fetchone()
    if row is not None:
        sid, user_id, expires_at, revoked_at, generation = row
        if revoked_at is not None or expires_at <= now:
            return Rotation(Rotated.INVALID, sid)
        new = successor(sid, generation + 1)
        conn.execute(
            "UPDATE sessions SET previous_hash=?, rotated_at=?, refresh_hash=?,"
            " refresh_expires_at=?, access_expires_at=?, generation=? WHERE id=?",
            (
                refresh_hash,
                now,
                new.refresh_hash,
                new.refresh_expires_at,
                new.access_expires_at,
                generation + 1,
                sid,
            ),
        )
        _put_access(conn, user_id, sid, new)
        return Rotation(
            Rotated.ROTATED,
            sid,
            _user(conn, user_id, new.access_expires_at, sid),
            new.refresh_expires_at,
            generation + 1,
        )
    row = conn.execute(
        "SELECT id, user_id, rotated_at, revoked_at, refresh_expires_at, access_expires_at,"
        " generation FROM sessions WHERE previous_hash=?",
        (refresh_hash,),
    ).fetchone()
    if row is not None:  # the token spent last: a retry, or a thief after the window
        sid, user_id, rotated_at, revoked_at, refresh_expires_at, access_expires, gen = row
        if revoked_at is not None:
            return Rotation(Rotated.INVALID, sid)
        if now - rotated_at <= grace_ms:  # even if its access token expired: the same pair
            new = successor(sid, gen)  # the same successor: derived, never stored in clear
            _put_access(conn, user_id, sid, new)  # still there unless it expired
            user = _user(conn, user_id, access_expires, sid)
            return Rotation(Rotated.REPLAYED, sid, user, refresh_expires_at, gen)
        _revoke(conn, "id=?", (sid,), now)
        return Rotation(Rotated.REUSED, sid)
    if session_hint:  # only the id it names: the caller checks it was one of the session's
        row = conn.execute(
            "SELECT user_id, generation FROM sessions WHERE id=? AND revoked_at IS NULL",
            (session_hint,),
        ).fetchone()
        if row is not None:
            return Rotation(Rotated.OLDER, session_hint, generation=row[1], user_id=row[0])
    return Rotation(Rotated.INVALID)


def access_info(conn: sqlite3.Connection, token_hash: str, now: int) -> TokenInfo | None:
    row = conn.execute(
        "SELECT t.user_id, u.username, t.expires_at, coalesce(t.session, '') FROM tokens t"
        " JOIN users u ON u.id = t.user_id LEFT JOIN sessions s ON s.id = t.session"
        " WHERE t.hash=? AND t.kind='access' AND t.expires_at>? AND s.revoked_at IS NULL",
        (token_hash, now),
    ).fetchone()
    return TokenInfo(*row) if row else None


def session_live(conn: sqlite3.Connection, session: str, now: int) -> bool:
    if not session:
        return True
    row = conn.execute(
        "SELECT 1 FROM sessions WHERE id=? AND revoked_at IS NULL AND refresh_expires_at>?",
        (session, now),
    ).fetchone()
    return row is not None
