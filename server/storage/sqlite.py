"""SQLite storage: WAL mode, one writer thread (which serialises writes, and so the per-user feed
counters), a small pool of reader threads with their own connections."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from core import protocol as p

from . import _domain, _messages, _search, _sessions
from ._migrations import DB_VERSION, migrate
from .base import (
    FeedPage,
    FeedState,
    NewSession,
    Rotation,
    Storage,
    StoredChange,
    TokenInfo,
    UserExists,
    WriteResult,
)

T = TypeVar("T")

log = logging.getLogger(__name__)


class SQLiteStorage(Storage):
    """Storage in one SQLite file. ``synchronous_full`` fsyncs every commit (power-loss safe)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        retention: int = 10_000,
        synchronous_full: bool = True,
        readers: int = 4,
    ) -> None:
        self.path = Path(path)
        self.retention = retention
        self.synchronous_full = synchronous_full
        self.epoch = 0
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="sqlite-reader")
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    # --- connections -------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={'FULL' if self.synchronous_full else 'NORMAL'}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        with self._lock:
            self._connections.append(conn)
        return conn

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._in_read_tx, fn, args)

    def _in_read_tx(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            return fn(conn, *args)
        finally:
            conn.execute("COMMIT")

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, self._in_write_tx, fn, args)

    def _in_write_tx(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn, *args)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def open(self) -> None:
        """Create or migrate the schema (:mod:`._migrations`); raises :class:`DatabaseTooNew`
        for a newer server's database, leaving it untouched."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        found = await loop.run_in_executor(self._writer, lambda: migrate(self._conn(), self.path))
        if 0 < found < DB_VERSION:
            log.info("database %s migrated from schema %d to %d", self.path, found, DB_VERSION)
        self.epoch = await self._write(self._init_epoch)

    def _init_epoch(self, conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT value FROM meta WHERE key='epoch'").fetchone()
        if row:
            return int(row[0])
        epoch = secrets.randbelow(2**31 - 2) + 2
        conn.execute("INSERT INTO meta VALUES ('epoch', ?)", (str(epoch),))
        return epoch

    async def server_secret(self, name: str) -> bytes:
        def op(conn: sqlite3.Connection) -> bytes:
            key = f"secret:{name}"
            conn.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (key, secrets.token_hex(32)))
            row = conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
            return bytes.fromhex(row[0])

        return await self._write(op)

    async def close(self) -> None:
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()

    # --- accounts and tokens -----------------------------------------------------------------

    async def add_user(self, username: str, password_hash: str, now: int) -> int:
        def op(conn: sqlite3.Connection) -> int:
            try:
                cur = conn.execute(
                    "INSERT INTO users (username, password_hash, created_at) VALUES (?, ?, ?)",
                    (username, password_hash, now),
                )
            except sqlite3.IntegrityError:
                raise UserExists(f"user {username!r} already exists") from None
            user_id = int(cur.lastrowid or 0)
            conn.execute("INSERT INTO feeds VALUES (?, 0, 1)", (user_id,))
            return user_id

        return await self._write(op)

    async def user_credentials(self, username: str) -> tuple[int, str] | None:
        def op(conn: sqlite3.Connection) -> tuple[int, str] | None:
            row = conn.execute(
                "SELECT id, password_hash FROM users WHERE username=?", (username,)
            ).fetchone()
            return (row[0], row[1]) if row else None

        return await self._read(op)

    async def start_session(self, session: str, user_id: int, tokens: NewSession, now: int) -> None:
        await self._write(_sessions.start_session, session, user_id, tokens, now)

    async def rotate_refresh(
        self,
        refresh_hash: str,
        session_hint: str,
        successor: Callable[[str, int], NewSession],
        now: int,
        grace_ms: int,
    ) -> Rotation:
        return await self._write(
            _sessions.rotate_refresh, refresh_hash, session_hint, successor, now, grace_ms
        )

    async def access_info(self, token_hash: str, now: int) -> TokenInfo | None:
        return await self._read(_sessions.access_info, token_hash, now)

    async def session_live(self, session: str, now: int) -> bool:
        return await self._read(_sessions.session_live, session, now)

    async def sessions_live(self, sessions: list[str], now: int) -> set[str]:
        def op(conn: sqlite3.Connection) -> set[str]:
            rows = conn.execute(
                "SELECT id FROM sessions WHERE id IN (SELECT value FROM json_each(?))"
                " AND revoked_at IS NULL AND refresh_expires_at>?",
                (json.dumps(sessions), now),
            ).fetchall()
            return {row[0] for row in rows} | ({""} if "" in sessions else set())

        return await self._read(op)

    async def revoke_sessions(self, user_id: int, session: str | None, now: int) -> int:
        return await self._write(_sessions.revoke_sessions, user_id, session, now)

    # --- feed ---------------------------------------------------------------------------------

    async def feed_state(self, user_id: int) -> FeedState:
        return await self._read(_domain.feed_state, user_id)

    async def feed_heads(self, user_ids: list[int]) -> dict[int, FeedState]:
        def op(conn: sqlite3.Connection) -> dict[int, FeedState]:
            rows = conn.execute(
                "SELECT user_id, head, min_retained FROM feeds"
                " WHERE user_id IN (SELECT value FROM json_each(?))",
                (json.dumps(user_ids),),
            ).fetchall()
            return {user_id: FeedState(head, low) for user_id, head, low in rows}

        return await self._read(op)

    async def changes_since(self, user_id: int, since: int, limit: int) -> list[StoredChange]:
        return await self._read(_feed_page, user_id, since, limit)

    async def changes_since_many(self, wants: list[FeedPage]) -> dict[FeedPage, list[StoredChange]]:
        def op(conn: sqlite3.Connection) -> dict[FeedPage, list[StoredChange]]:
            # One read transaction, in-process: a page query each is cheap.
            return {want: _feed_page(conn, *want) for want in wants}

        return await self._read(op)

    # --- reads ---------------------------------------------------------------------------------

    async def list_conversations(self, user_id: int) -> p.ConversationList:
        def op(conn: sqlite3.Connection) -> p.ConversationList:
            head = _domain.feed_state(conn, user_id).head
            return p.ConversationList(_domain.conversations_of(conn, user_id), head)

        return await self._read(op)

    async def messages_page(
        self, user_id: int, conversation_id: str, before: int | None, limit: int
    ) -> p.MessagePage:
        return await self._read(_domain.messages_page, user_id, conversation_id, before, limit)

    async def snapshot(self, user_id: int, messages_per_conversation: int) -> p.Snapshot:
        return await self._read(_domain.snapshot, self.epoch, user_id, messages_per_conversation)

    # --- writes --------------------------------------------------------------------------------

    def _feed(self, conn: sqlite3.Connection) -> _domain.FeedWriter:
        return _domain.FeedWriter(conn, self.retention)

    async def create_conversation(
        self, user_id: int, req: p.ConversationCreate, now: int
    ) -> WriteResult:
        return await self._write(
            lambda conn: _domain.create_conversation(self._feed(conn), user_id, req, now)
        )

    async def patch_conversation(
        self,
        user_id: int,
        conversation_id: str,
        req: p.ConversationPatch,
        now: int,
        op_id: str | None = None,
    ) -> WriteResult:
        return await self._write(
            lambda conn: _domain.patch_conversation(
                self._feed(conn), user_id, conversation_id, req, now, op_id
            )
        )

    async def delete_conversation(
        self,
        user_id: int,
        conversation_id: str,
        base_version: int,
        now: int,
        op_id: str | None = None,
    ) -> WriteResult:
        return await self._write(
            lambda conn: _domain.delete_conversation(
                self._feed(conn), user_id, conversation_id, base_version, now, op_id
            )
        )

    async def send_message(
        self, user_id: int, conversation_id: str, req: p.MessageCreate, now: int
    ) -> WriteResult:
        return await self._write(
            lambda conn: _messages.send_message(
                self._feed(conn), user_id, conversation_id, req, now
            )
        )

    async def edit_message(
        self,
        user_id: int,
        conversation_id: str,
        message_id: str,
        req: p.MessagePatch,
        now: int,
        op_id: str | None = None,
    ) -> WriteResult:
        return await self._write(
            lambda conn: _messages.edit_message(
                self._feed(conn), user_id, conversation_id, message_id, req, now, op_id
            )
        )

    async def delete_message(
        self,
        user_id: int,
        conversation_id: str,
        message_id: str,
        base_version: int | None,
        now: int,
        op_id: str | None = None,
    ) -> WriteResult:
        return await self._write(
            lambda conn: _messages.delete_message(
                self._feed(conn), user_id, conversation_id, message_id, base_version, now, op_id
            )
        )

    async def search_messages(
        self, user_id: int, terms: list[str], before: int | None, limit: int
    ) -> p.SearchPage:
        return await self._read(_search.search_messages, user_id, terms, before, limit)

    async def mark_read(
        self, user_id: int, conversation_id: str, seq: int, now: int
    ) -> WriteResult:
        return await self._write(
            lambda conn: _domain.mark_read(self._feed(conn), user_id, conversation_id, seq, now)
        )


def _feed_page(
    conn: sqlite3.Connection, user_id: int, since: int, limit: int
) -> list[StoredChange]:
    rows = conn.execute(
        "SELECT seq, payload FROM changes WHERE user_id=? AND seq>? ORDER BY seq LIMIT ?",
        (user_id, since, limit),
    ).fetchall()
    return [StoredChange(user_id, seq, payload) for seq, payload in rows]
