"""PostgreSQL storage (``concord[scale]``): the same domain SQL as the SQLite store, run through
psycopg 3 on a connection pool, so several server instances can share one database.

Each call runs one transaction on a pooled connection in a worker thread (the domain rules are
synchronous DB-API code shared with SQLite: :mod:`._domain`, :mod:`._messages`). Writes run at
READ COMMITTED with two kinds of row locks, always taken in the same order so concurrent writes
wait rather than deadlock: the conversation's row first (writes to one conversation are
serialised, as SQLite serialises every write), then the affected users' feed counters in user-id
order (:class:`._pg_access.PgFeedWriter`; a patch that changes members, which appends to two
sets of feeds, locks both sets in one round first). A transaction that still loses a race (two
first writes of one new id, two refreshes of one token) is retried. Reads run in a REPEATABLE
READ, READ ONLY transaction: one snapshot, as in SQLite.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import msgspec
from psycopg import errors
from psycopg_pool import ConnectionPool

from core import protocol as p

from . import _domain, _messages, _sessions
from ._pg_access import (
    PgFeedWriter,
    QmarkConnection,
    lock_conversation,
    lock_feeds_of_patch,
    search_messages,
)
from ._pg_schema import PG_VERSION as PG_VERSION
from ._pg_schema import migrate
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
from .factory import redact_url

T = TypeVar("T")

log = logging.getLogger(__name__)

# What a retry can cure: the transaction lost a race, not a rule.
_RETRIED = (errors.SerializationFailure, errors.DeadlockDetected, errors.UniqueViolation)
_ATTEMPTS = 5
_REPEATABLE = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"


def _sql(conn: QmarkConnection) -> Any:
    """The qmark connection where the shared SQL (:mod:`._sessions`) names sqlite3's type."""
    return conn


class PostgresStorage(Storage):
    """Storage in a PostgreSQL database named by a ``postgresql://`` URL."""

    def __init__(self, url: str, *, retention: int = 10_000, pool_size: int = 10) -> None:
        self.url = url
        self.retention = retention
        self.epoch = 0
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            open=False,
            kwargs={"autocommit": True},
            name="concord",
        )
        self._threads = ThreadPoolExecutor(pool_size, thread_name_prefix="postgres")
        self._closed = False

    def __repr__(self) -> str:
        return f"PostgresStorage({redact_url(self.url)!r})"

    # --- transactions -------------------------------------------------------------------------

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._threads, fn)

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        def tx() -> T:
            with self._pool.connection() as raw, raw.transaction():
                raw.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                return fn(QmarkConnection(raw), *args)

        return await self._run(tx)

    async def _write(
        self,
        fn: Callable[[QmarkConnection], T],
        conversation_id: str | None = None,
        isolation: str = "",
    ) -> T:
        def tx() -> T:
            for attempt in range(1, _ATTEMPTS + 1):
                try:
                    with self._pool.connection() as raw, raw.transaction():
                        if isolation:
                            raw.execute(isolation)
                        conn = QmarkConnection(raw)
                        if conversation_id is not None:
                            lock_conversation(conn, conversation_id)
                        return fn(conn)
                except _RETRIED as exc:
                    if attempt == _ATTEMPTS:
                        raise
                    log.debug("retrying a write after %s", type(exc).__name__)
            raise AssertionError("unreachable")

        return await self._run(tx)

    # --- lifecycle ----------------------------------------------------------------------------

    async def open(self) -> None:
        """Create or migrate the schema (:mod:`._pg_schema`); raises
        :class:`._pg_schema.PgDatabaseTooNew` for a newer server's database."""

        def start() -> int:
            self._pool.open(wait=True, timeout=30)
            with self._pool.connection() as raw:
                return migrate(raw, redact_url(self.url))

        found = await self._run(start)
        if 0 < found < PG_VERSION:
            log.info("database migrated from schema %d to %d", found, PG_VERSION)
        self.epoch = await self._write(self._init_epoch)

    @staticmethod
    def _init_epoch(conn: QmarkConnection) -> int:
        epoch = secrets.randbelow(2**31 - 2) + 2
        conn.raw.execute(
            "INSERT INTO meta VALUES ('epoch', %s) ON CONFLICT (key) DO NOTHING", (str(epoch),)
        )
        row = conn.raw.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()
        assert row is not None
        return int(row[0])

    async def new_epoch(self) -> int:
        """Write a new random ``meta.epoch`` (after a restore; every instance stopped): every
        client's cursor then gets ``epoch_changed`` and it does a full sync (§4.2)."""

        def write(conn: QmarkConnection) -> int:
            epoch = self.epoch
            while epoch == self.epoch:
                epoch = secrets.randbelow(2**31 - 2) + 2
            conn.raw.execute("UPDATE meta SET value = %s WHERE key = 'epoch'", (str(epoch),))
            return epoch

        self.epoch = await self._write(write)
        return self.epoch

    async def server_secret(self, name: str) -> bytes:
        def op(conn: QmarkConnection) -> bytes:
            key = f"secret:{name}"
            conn.raw.execute(
                "INSERT INTO meta VALUES (%s, %s) ON CONFLICT (key) DO NOTHING",
                (key, secrets.token_hex(32)),
            )
            row = conn.raw.execute("SELECT value FROM meta WHERE key = %s", (key,)).fetchone()
            assert row is not None
            return bytes.fromhex(row[0])

        return await self._write(op)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._run(self._pool.close)
        self._threads.shutdown(wait=True)

    # --- accounts and sessions ----------------------------------------------------------------

    async def add_user(self, username: str, password_hash: str, now: int) -> int:
        def tx() -> int:
            try:
                with self._pool.connection() as raw, raw.transaction():
                    row = raw.execute(
                        "INSERT INTO users (username, password_hash, created_at) "
                        "VALUES (%s, %s, %s) RETURNING id",
                        (username, password_hash, now),
                    ).fetchone()
                    assert row is not None
                    raw.execute("INSERT INTO feeds VALUES (%s, 0, 1)", (row[0],))
                    return int(row[0])
            except errors.UniqueViolation:
                raise UserExists(f"user {username!r} already exists") from None

        return await self._run(tx)

    async def user_credentials(self, username: str) -> tuple[int, str] | None:
        def op(conn: QmarkConnection) -> tuple[int, str] | None:
            row = conn.execute(
                "SELECT id, password_hash FROM users WHERE username=?", (username,)
            ).fetchone()
            return (int(row[0]), str(row[1])) if row else None

        return await self._read(op)

    async def start_session(self, session: str, user_id: int, tokens: NewSession, now: int) -> None:
        # READ COMMITTED: an insert, and a cleanup that concurrent sign-ins may race on (under
        # REPEATABLE READ their deletes of the same expired rows failed to serialise).
        await self._write(lambda c: _sessions.start_session(_sql(c), session, user_id, tokens, now))

    async def rotate_refresh(
        self,
        refresh_hash: str,
        session_hint: str,
        successor: Callable[[str, int], NewSession],
        now: int,
        grace_ms: int,
    ) -> Rotation:
        # REPEATABLE READ: of two refreshes racing with one token, the second fails to serialise
        # and is retried, so it sees the first's rotation (a replay), as under SQLite's writer.
        return await self._write(
            lambda c: _sessions.rotate_refresh(
                _sql(c), refresh_hash, session_hint, successor, now, grace_ms
            ),
            isolation=_REPEATABLE,
        )

    async def access_info(self, token_hash: str, now: int) -> TokenInfo | None:
        return await self._read(lambda c: _sessions.access_info(_sql(c), token_hash, now))

    async def session_live(self, session: str, now: int) -> bool:
        return await self._read(lambda c: _sessions.session_live(_sql(c), session, now))

    async def revoke_sessions(self, user_id: int, session: str | None, now: int) -> int:
        return await self._write(
            lambda c: _sessions.revoke_sessions(_sql(c), user_id, session, now),
            isolation=_REPEATABLE,
        )

    # --- feed ---------------------------------------------------------------------------------

    async def feed_state(self, user_id: int) -> FeedState:
        return await self._read(_domain.feed_state, user_id)

    async def feed_heads(self, user_ids: list[int]) -> dict[int, FeedState]:
        def op(conn: QmarkConnection) -> dict[int, FeedState]:
            rows = conn.raw.execute(
                "SELECT user_id, head, min_retained FROM feeds WHERE user_id = ANY(%s)",
                (user_ids,),
            ).fetchall()
            return {user_id: FeedState(head, low) for user_id, head, low in rows}

        return await self._read(op)

    async def sessions_live(self, sessions: list[str], now: int) -> set[str]:
        def op(conn: QmarkConnection) -> set[str]:
            rows = conn.raw.execute(
                "SELECT id FROM sessions WHERE id = ANY(%s)"
                " AND revoked_at IS NULL AND refresh_expires_at > %s",
                (sessions, now),
            ).fetchall()
            return {row[0] for row in rows} | ({""} if "" in sessions else set())

        return await self._read(op)

    async def changes_since(self, user_id: int, since: int, limit: int) -> list[StoredChange]:
        def op(conn: QmarkConnection) -> list[StoredChange]:
            rows = conn.execute(
                "SELECT seq, payload FROM changes WHERE user_id=? AND seq>? ORDER BY seq LIMIT ?",
                (user_id, since, limit),
            ).fetchall()
            return [StoredChange(user_id, seq, bytes(payload)) for seq, payload in rows]

        return await self._read(op)

    async def changes_since_many(self, wants: list[FeedPage]) -> dict[FeedPage, list[StoredChange]]:
        def op(conn: QmarkConnection) -> dict[FeedPage, list[StoredChange]]:
            # One query for every page: a LATERAL index range scan per (user, since, limit).
            rows = conn.raw.execute(
                "SELECT q.user_id, q.since, q.lim, c.seq, c.payload"
                " FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS q(user_id, since, lim)"
                " CROSS JOIN LATERAL (SELECT seq, payload FROM changes"
                "  WHERE user_id = q.user_id AND seq > q.since ORDER BY seq LIMIT q.lim) c"
                " ORDER BY q.user_id, q.since, q.lim, c.seq",
                ([w[0] for w in wants], [w[1] for w in wants], [w[2] for w in wants]),
            ).fetchall()
            found: dict[FeedPage, list[StoredChange]] = {want: [] for want in wants}
            for user_id, since, lim, seq, payload in rows:
                found[(user_id, since, lim)].append(StoredChange(user_id, seq, bytes(payload)))
            return found

        return await self._read(op)

    # --- reads --------------------------------------------------------------------------------

    async def list_conversations(self, user_id: int) -> p.ConversationList:
        def op(conn: QmarkConnection) -> p.ConversationList:
            head = _domain.feed_state(conn, user_id).head
            return p.ConversationList(_domain.conversations_of(conn, user_id), head)

        return await self._read(op)

    async def messages_page(
        self, user_id: int, conversation_id: str, before: int | None, limit: int
    ) -> p.MessagePage:
        return await self._read(_domain.messages_page, user_id, conversation_id, before, limit)

    async def snapshot(self, user_id: int, messages_per_conversation: int) -> p.Snapshot:
        return await self._read(_domain.snapshot, self.epoch, user_id, messages_per_conversation)

    async def search_messages(
        self, user_id: int, terms: list[str], before: int | None, limit: int
    ) -> p.SearchPage:
        return await self._read(search_messages, user_id, terms, before, limit)

    # --- writes -------------------------------------------------------------------------------

    async def _conversation_write(
        self, conversation_id: str, fn: Callable[[PgFeedWriter], WriteResult]
    ) -> WriteResult:
        return await self._write(lambda c: fn(PgFeedWriter(c, self.retention)), conversation_id)

    async def create_conversation(
        self, user_id: int, req: p.ConversationCreate, now: int
    ) -> WriteResult:
        return await self._conversation_write(
            req.id, lambda f: _domain.create_conversation(f, user_id, req, now)
        )

    async def patch_conversation(
        self,
        user_id: int,
        conversation_id: str,
        req: p.ConversationPatch,
        now: int,
        op_id: str | None = None,
    ) -> WriteResult:
        def patch(f: PgFeedWriter) -> WriteResult:
            if req.members is not msgspec.UNSET:
                lock_feeds_of_patch(f.conn, conversation_id, list(req.members))
            return _domain.patch_conversation(f, user_id, conversation_id, req, now, op_id)

        return await self._conversation_write(conversation_id, patch)

    async def delete_conversation(
        self,
        user_id: int,
        conversation_id: str,
        base_version: int,
        now: int,
        op_id: str | None = None,
    ) -> WriteResult:
        return await self._conversation_write(
            conversation_id,
            lambda f: _domain.delete_conversation(
                f, user_id, conversation_id, base_version, now, op_id
            ),
        )

    async def send_message(
        self, user_id: int, conversation_id: str, req: p.MessageCreate, now: int
    ) -> WriteResult:
        return await self._conversation_write(
            conversation_id,
            lambda f: _messages.send_message(f, user_id, conversation_id, req, now),
        )

    async def mark_read(
        self, user_id: int, conversation_id: str, seq: int, now: int
    ) -> WriteResult:
        return await self._conversation_write(
            conversation_id, lambda f: _domain.mark_read(f, user_id, conversation_id, seq, now)
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
        return await self._conversation_write(
            conversation_id,
            lambda f: _messages.edit_message(
                f, user_id, conversation_id, message_id, req, now, op_id
            ),
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
        return await self._conversation_write(
            conversation_id,
            lambda f: _messages.delete_message(
                f, user_id, conversation_id, message_id, base_version, now, op_id
            ),
        )
