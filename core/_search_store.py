"""The cache's search index and its size bound (docs/architecture.md §5.7, §5.11).

**Index.** Cache migration step 4 (:mod:`core._migrations`) made two FTS5 tables,
``message_fts(text, conv)`` and ``title_fts(title)`` (tokenizer ``unicode61 remove_diacritics
2``, prefix indexes of 1 and 2 characters), and triggers on ``messages`` and ``conversations``
that keep them equal to those rows in the same transaction as any write, by anyone: an applied
change, an edit, an erased or deleted message, an eviction, a full sync. A message's index rowid
(``search_rows``) is its ``created_at`` times 2^20 plus a tie-breaker, so the index lists matches
newest first and a query stops after ``limit`` of them however common the prefix;
``search_keys`` numbers conversations for the titles and the ``conv`` column (one conversation's
matches, for Ctrl+F). ``cache_stats.messages`` counts the cached messages (the triggers keep it).

**Bound.** The cache keeps every page it loaded, up to ``max_messages`` (``ClientConfig.
cache_messages``). Past it, messages are evicted down to 95 % of it: the conversations least
recently updated first, each one's oldest messages first, keeping every conversation's newest
:data:`KEEP_RECENT` until nothing else is left.

Mixed into :class:`core.store.LocalStore`, which provides ``db`` and ``max_messages``.
"""

from __future__ import annotations

import logging
import sqlite3
from contextlib import AbstractContextManager

import msgspec

from . import protocol as p

log = logging.getLogger(__name__)

KEEP_RECENT = 50  # a conversation's newest messages, evicted only when nothing else is left
DEFAULT_MAX_MESSAGES = 200_000
ROWID_SPREAD = 1 << 20  # index rowid = created_at * ROWID_SPREAD + tie-breaker

_msg_decoder = msgspec.json.Decoder(p.Message)


def _phrase(term: str) -> str:
    """One word as an FTS5 string: quoted, so nothing a user typed is ever query syntax."""
    return '"' + term.replace('"', '""') + '"'


def fts_match(terms: list[str], column: str | None = None) -> str:
    """The FTS5 query for :func:`core.protocol.search_terms`: every word, the last a prefix."""
    prefix = f"{column}:" if column else ""
    parts = [prefix + _phrase(t) for t in terms]
    parts[-1] += "*"
    return " AND ".join(parts)


class SearchStore:
    """The search and eviction half of :class:`core.store.LocalStore`."""

    db: sqlite3.Connection
    max_messages: int

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    # --- queries ---------------------------------------------------------------------------------

    def search_messages(
        self, terms: list[str], limit: int, conversation_id: str | None = None
    ) -> list[p.Message]:
        """Cached messages matching every term (the last as a prefix), newest first; deleted
        messages (erased text) never match."""
        if not terms or limit <= 0:
            return []
        query = fts_match(terms, "text")
        if conversation_id is not None:
            key = self._search_key(conversation_id)
            if key is None:
                return []
            query += f' AND conv:"c{key}"'
        rows = self.db.execute(
            "SELECT m.body FROM message_fts f "
            "JOIN search_rows r ON r.rowid = f.rowid "
            "JOIN messages m ON m.conversation_id = r.conversation_id AND m.seq = r.seq "
            "WHERE message_fts MATCH ? ORDER BY f.rowid DESC LIMIT ?",
            (query, limit),
        ).fetchall()
        found = [_msg_decoder.decode(r[0]) for r in rows]
        return [m for m in found if not getattr(m, "deleted", False)]

    def search_titles(self, terms: list[str], limit: int) -> list[str]:
        """Ids of the cached conversations whose title matches (in no particular order)."""
        if not terms or limit <= 0:
            return []
        rows = self.db.execute(
            "SELECT k.conversation_id FROM title_fts t JOIN search_keys k ON k.n = t.rowid "
            "WHERE title_fts MATCH ? LIMIT ?",
            (fts_match(terms), limit),
        ).fetchall()
        return [r[0] for r in rows]

    def _search_key(self, conversation_id: str) -> int | None:
        row = self.db.execute(
            "SELECT n FROM search_keys WHERE conversation_id=?", (conversation_id,)
        ).fetchone()
        return int(row[0]) if row else None

    def message_count(self) -> int:
        """How many messages the cache holds (kept by the triggers, so it costs nothing)."""
        row = self.db.execute("SELECT value FROM cache_stats WHERE name='messages'").fetchone()
        return int(row[0]) if row else 0

    def oldest_seq(self, conversation_id: str) -> int | None:
        """The seq of the oldest cached message of a conversation (None: none cached)."""
        row = self.db.execute(
            "SELECT min(seq) FROM messages WHERE conversation_id=?", (conversation_id,)
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def messages_before(
        self, conversation_id: str, before: int | None, limit: int
    ) -> list[p.Message]:
        """Up to ``limit`` cached messages just before seq ``before`` (None: the newest),
        oldest first."""
        rows = self.db.execute(
            "SELECT body FROM messages WHERE conversation_id=? AND seq<? ORDER BY seq DESC LIMIT ?",
            (conversation_id, before if before is not None else 1 << 62, limit),
        ).fetchall()
        return [_msg_decoder.decode(r[0]) for r in reversed(rows)]

    # --- keeping the cache bounded (inside the writer's transaction) -----------------------------

    def _evict(self, db: sqlite3.Connection) -> int:
        """Evict down to 95 % of ``max_messages`` when past it; returns how many went."""
        total = self.message_count()
        if self.max_messages <= 0 or total <= self.max_messages:
            return 0
        excess = total - (self.max_messages - self.max_messages // 20)
        counts = db.execute(
            "SELECT m.conversation_id, count(*), "
            "coalesce(json_extract(CAST(c.body AS TEXT), '$.updated_at'), 0) AS at "
            "FROM messages m LEFT JOIN conversations c ON c.id = m.conversation_id "
            "GROUP BY m.conversation_id ORDER BY at, m.conversation_id"
        ).fetchall()
        left = {cid: n for cid, n, _at in counts}
        gone = 0
        for keep in (KEEP_RECENT, 0):
            for cid, _n, _at in counts:
                if gone >= excess:
                    break
                drop = min(left[cid] - keep, excess - gone)
                if drop <= 0:
                    continue
                db.execute(
                    "DELETE FROM messages WHERE conversation_id=? AND seq IN "
                    "(SELECT seq FROM messages WHERE conversation_id=? ORDER BY seq LIMIT ?)",
                    (cid, cid, drop),
                )
                left[cid] -= drop
                gone += drop
        log.info("cache past %d messages: evicted %d", self.max_messages, gone)
        return gone

    def _drop_unconnected(
        self, db: sqlite3.Connection, conversation_id: str, page_lo: int, deleted: set[int]
    ) -> None:
        """A full sync's page starts at ``page_lo``: cached older messages that do not reach it
        (messages in between are neither cached nor known deleted) are dropped, so the cache
        holds each conversation's history without holes and scrolling back never skips any."""
        row = db.execute(
            "SELECT max(seq) FROM messages WHERE conversation_id=? AND seq<?",
            (conversation_id, page_lo),
        ).fetchone()
        below = row[0] if row else None
        if below is None or below == page_lo - 1:
            return
        missing = page_lo - 1 - below
        if sum(1 for s in deleted if below < s < page_lo) >= missing:
            return
        db.execute(
            "DELETE FROM messages WHERE conversation_id=? AND seq<?", (conversation_id, page_lo)
        )

    # --- the index as a whole --------------------------------------------------------------------

    def search_index_ok(self) -> bool:
        """Whether the index holds exactly the cached messages (cheap counts, no scan of text)."""
        db = self.db
        messages = db.execute("SELECT count(*) FROM messages").fetchone()[0]
        rows = db.execute("SELECT count(*) FROM search_rows").fetchone()[0]
        indexed = db.execute("SELECT count(*) FROM message_fts").fetchone()[0]
        return bool(messages == rows == indexed == self.message_count())

    def rebuild_search_index(self) -> None:
        """Index every cached title and message afresh, in one transaction (a repair; the
        triggers keep the index right by themselves)."""
        with self.transaction() as db:
            self._rebuild_search(db, messages=True)

    def _rebuild_search(self, db: sqlite3.Connection, *, messages: bool) -> None:
        """Index the titles (and, with ``messages``, every message) afresh."""
        db.execute(
            "INSERT INTO search_keys(conversation_id) SELECT id FROM conversations "
            "WHERE id NOT IN (SELECT conversation_id FROM search_keys)"
        )
        db.execute("DELETE FROM title_fts")
        db.execute(
            "INSERT INTO title_fts(rowid, title) SELECT k.n, "
            "json_extract(CAST(c.body AS TEXT), '$.title') FROM conversations c "
            "JOIN search_keys k ON k.conversation_id = c.id"
        )
        if not messages:
            return
        log.warning("rebuilding the cache's search index")
        for statement in REBUILD_MESSAGES:
            db.execute(statement)


REBUILD_MESSAGES = (
    "DELETE FROM message_fts",
    "DELETE FROM search_rows",
    "INSERT INTO search_keys(conversation_id) SELECT DISTINCT conversation_id FROM messages "
    "WHERE conversation_id NOT IN (SELECT conversation_id FROM search_keys)",
    f"""INSERT INTO search_rows(rowid, conversation_id, seq)
SELECT at * {ROWID_SPREAD} + row_number() OVER (PARTITION BY at ORDER BY conversation_id, seq) - 1,
    conversation_id, seq
FROM (SELECT conversation_id, seq,
    coalesce(json_extract(CAST(body AS TEXT), '$.created_at'), 0) AS at FROM messages)""",
    """INSERT INTO message_fts(rowid, text, conv)
SELECT r.rowid, coalesce(json_extract(CAST(m.body AS TEXT), '$.body'), ''), 'c' || k.n
FROM search_rows r
JOIN messages m ON m.conversation_id = r.conversation_id AND m.seq = r.seq
JOIN search_keys k ON k.conversation_id = r.conversation_id""",
    "UPDATE cache_stats SET value = (SELECT count(*) FROM messages) WHERE name = 'messages'",
)
