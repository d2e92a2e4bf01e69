"""What lets the engine-neutral domain SQL (:mod:`._domain`, :mod:`._messages`,
:mod:`._operations`) run on PostgreSQL: a qmark connection over psycopg, a feed writer that locks
the feed counters in a stable order, and search over the ``tsvector`` column.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

from core import protocol as p

from ._domain import FeedWriter
from ._messages import MESSAGE_COLUMNS, MESSAGE_FIELDS, message_from_row


class QmarkConnection:
    """A psycopg connection that takes the DB-API ``?`` placeholders the shared domain SQL is
    written with (``%`` is escaped; the domain SQL has no ``?`` inside string literals), and
    SQLite's ``INSERT OR IGNORE`` as ``ON CONFLICT DO NOTHING``."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.raw = conn
        self._sql: dict[str, str] = {}

    def _translate(self, sql: str) -> str:
        out = self._sql.get(sql)
        if out is None:
            out = sql.replace("%", "%%").replace("?", "%s")
            if out.startswith("INSERT OR IGNORE INTO "):  # SQLite's spelling of the upsert
                out = "INSERT INTO " + out.removeprefix("INSERT OR IGNORE INTO ")
                out += " ON CONFLICT DO NOTHING"
            self._sql[sql] = out
        return out

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        return self.raw.execute(self._translate(sql), params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self.raw.cursor() as cur:
            cur.executemany(self._translate(sql), rows)


class PgFeedWriter(FeedWriter):
    """Appends change rows; first takes the users' counter rows ``FOR UPDATE`` in user-id order,
    so two transactions appending to overlapping sets of feeds wait for each other instead of
    deadlocking, and each user's changes commit in ``seq`` order."""

    def append_many(
        self, kind: str, entity_id: str, version: int, data_by_user: dict[int, Any], ts: int
    ) -> dict[int, int]:
        if data_by_user:
            self.conn.raw.execute(
                "SELECT user_id FROM feeds WHERE user_id = ANY(%s) ORDER BY user_id FOR UPDATE",
                (sorted(data_by_user),),
            )
        return super().append_many(kind, entity_id, version, data_by_user, ts)

    def insert_changes(self, rows: list[tuple[int, int, bytes]]) -> None:
        """One statement for every recipient (a 1,000-member write was 1,000 INSERTs)."""
        if rows:
            users, seqs, payloads = zip(*rows, strict=True)
            self.conn.raw.execute(
                "INSERT INTO changes (user_id, seq, payload) "
                "SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::bytea[])",
                (list(users), list(seqs), list(payloads)),
            )


def lock_conversation(conn: QmarkConnection, conversation_id: str) -> None:
    """Serialise the writes to one conversation (as SQLite's single writer does): the domain
    code reads, checks and then writes, which under READ COMMITTED must not interleave."""
    conn.raw.execute(
        "SELECT 1 FROM conversations WHERE id = %s FOR UPDATE", (conversation_id.lower(),)
    )


def lock_feeds_of_patch(conn: QmarkConnection, conversation_id: str, usernames: list[str]) -> None:
    """Before a patch: the feeds of the members and of the members it names, in one sorted
    round (a patch that removes members appends to two sets of feeds, which taken one after the
    other would be out of order with other writes)."""
    conn.raw.execute(
        "SELECT user_id FROM feeds WHERE user_id IN (SELECT user_id FROM members "
        "WHERE conversation_id = %s UNION SELECT id FROM users WHERE username = ANY(%s)) "
        "ORDER BY user_id FOR UPDATE",
        (conversation_id.lower(), usernames),
    )


def _tsquery(terms: list[str]) -> str:
    """Every word as a quoted lexeme (never query syntax), ANDed, the last one as a prefix."""
    quoted = ["'" + t.replace("\\", "\\\\").replace("'", "''") + "'" for t in terms]
    quoted[-1] += ":*"
    return " & ".join(quoted)


def search_messages(
    conn: QmarkConnection, user_id: int, terms: list[str], before: int | None, limit: int
) -> p.SearchPage:
    """The caller's messages matching every term (the last as a prefix), newest first: the
    order messages were written (``search_id``, an identity column), as the FTS5 rowids."""
    if not terms:
        return p.SearchPage([])
    rows = conn.raw.execute(
        f"SELECT {MESSAGE_COLUMNS}, m.search_id FROM messages m "
        "JOIN members mb ON mb.conversation_id = m.conversation_id AND mb.user_id = %s "
        "JOIN users u ON u.id = m.author_id "
        "WHERE m.search @@ to_tsquery('simple', public.unaccent('public.unaccent', %s)) "
        "AND m.search_id < %s AND m.deleted = 0 ORDER BY m.search_id DESC LIMIT %s",
        (user_id, _tsquery(terms), before if before is not None else 1 << 62, limit + 1),
    ).fetchall()
    page = [message_from_row(r) for r in rows[:limit]]
    more = len(rows) > limit
    return p.SearchPage(page, rows[limit - 1][MESSAGE_FIELDS] if more else None)
