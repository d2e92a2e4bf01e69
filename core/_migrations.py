"""The local cache's schema, as ordered migration steps.

Scheme: the version is SQLite's ``PRAGMA user_version``. ``STEPS[n - 1]`` takes a cache from
version ``n - 1`` to ``n``; a fresh file runs every step. Each step runs in one ``BEGIN
IMMEDIATE`` transaction together with its version bump, and re-reads the version inside it: the
processes of a profile that open the cache at the same moment migrate it exactly once, and a
crash leaves it at a whole version. Released steps are never edited; a release that changes the
schema appends a step (a SQL script, or a function for data rewrites). Cached rows hold only the
fields their version knew (unknown ones are dropped on decoding): a release that starts using a
new server field adds a step that deletes ``meta.cursor``, and the next start is a full sync.

* 1: the schema of Concord 0.1.0, exactly. 0.1.0 never set ``user_version``, so its caches read
  as 0 and run this step too: ``IF NOT EXISTS`` makes it a no-op on them.
* 2: ``drafts`` and ``own_versions`` (``IF NOT EXISTS``: pre-release builds already made them).
* 3: ``own_message_versions`` (this device's edits of a message, as ``own_versions``), and the
  cursor is dropped: cached rows lack ``last_seq`` and message versions, and an older version
  passed over ``message.updated``/``message.deleted``, so the next start is a full sync.
* 4: full-text search: ``message_fts``/``title_fts`` (FTS5), ``search_rows``/``search_keys``
  (their rowids), ``cache_stats`` (the message count) and the triggers on ``messages`` and
  ``conversations`` that keep them right (:mod:`core._search_store`); what was cached is
  indexed in the same step.

A cache of a version above :data:`CACHE_VERSION` was written by a newer Concord (the user went
back to an older one): see :func:`open_cache` for what happens then.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

log = logging.getLogger(__name__)

Step = str | Callable[[sqlite3.Connection], None]

STEPS: tuple[Step, ...] = (
    # 1 — Concord 0.1.0
    """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS conversations (id TEXT PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    conversation_id TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, body BLOB NOT NULL,
    PRIMARY KEY (conversation_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    op TEXT NOT NULL, target TEXT NOT NULL, body TEXT NOT NULL, created_at INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued', acked_seq INTEGER, attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT
);
CREATE TABLE IF NOT EXISTS apply_log (seq INTEGER NOT NULL, kind TEXT NOT NULL, entity TEXT);
""",
    # 2 — drafts, own versions
    """
-- Unsent text typed per conversation (any process writes; kept until sent or taken).
CREATE TABLE IF NOT EXISTS drafts (
    conversation_id TEXT PRIMARY KEY, text TEXT NOT NULL, updated_at INTEGER NOT NULL
);
-- Versions of a conversation that this device's own acknowledged patches made: a later patch
-- written against an older version follows them (a device's edits never conflict with each other).
CREATE TABLE IF NOT EXISTS own_versions (
    conversation_id TEXT NOT NULL, version INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, version)
) WITHOUT ROWID;
""",
    # 3 — message edits and deletes
    """
-- Versions of a message that this device's own acknowledged edits made: a later edit written
-- against an older version follows them (as own_versions does for conversations).
CREATE TABLE IF NOT EXISTS own_message_versions (
    message_id TEXT NOT NULL, conversation_id TEXT NOT NULL, version INTEGER NOT NULL,
    PRIMARY KEY (message_id, version)
) WITHOUT ROWID;
-- Cached rows lack the new fields (last_seq, message versions) and an older version passed over
-- message.updated/message.deleted changes: the next start is a full sync.
DELETE FROM meta WHERE key = 'cursor';
""",
    # 4 — full-text search over cached messages and titles (docs/architecture.md §5.11)
    """
-- Conversations numbered for the index (title rowid; the "conv" token of their messages).
CREATE TABLE search_keys (n INTEGER PRIMARY KEY, conversation_id TEXT NOT NULL UNIQUE);
-- Each cached message's index rowid: created_at * 2^20 + a tie-breaker (newest = largest).
CREATE TABLE search_rows (
    rowid INTEGER PRIMARY KEY, conversation_id TEXT NOT NULL, seq INTEGER NOT NULL,
    UNIQUE (conversation_id, seq)
);
CREATE TABLE cache_stats (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO cache_stats VALUES ('messages', 0);
CREATE VIRTUAL TABLE message_fts USING fts5(
    text, conv, tokenize = 'unicode61 remove_diacritics 2', prefix = '1 2'
);
CREATE VIRTUAL TABLE title_fts USING fts5(
    title, tokenize = 'unicode61 remove_diacritics 2', prefix = '1 2'
);
-- The triggers' inserts never conflict (NOT EXISTS): an outer INSERT OR REPLACE would turn an
-- inner OR IGNORE into a replace. A replaced row fires no delete trigger: the insert trigger
-- re-indexes the (conversation, seq) it finds mapped already.
CREATE TRIGGER messages_search_insert AFTER INSERT ON messages BEGIN
    INSERT INTO search_keys(conversation_id) SELECT new.conversation_id
        WHERE NOT EXISTS (SELECT 1 FROM search_keys WHERE conversation_id = new.conversation_id);
    -- Only a replaced row was indexed: deleting a rowid just before inserting it makes FTS5
    -- flush its pending writes, so a new message must not go through a delete.
    DELETE FROM message_fts WHERE rowid = (
        SELECT rowid FROM search_rows WHERE conversation_id = new.conversation_id AND seq = new.seq
    );
    INSERT INTO search_rows(rowid, conversation_id, seq)
        SELECT coalesce(
            (SELECT max(rowid) + 1 FROM search_rows WHERE rowid >= base AND rowid < base + 1048576),
            base), new.conversation_id, new.seq
        FROM (SELECT coalesce(json_extract(CAST(new.body AS TEXT), '$.created_at'), 0) * 1048576
              AS base)
        WHERE NOT EXISTS (
            SELECT 1 FROM search_rows WHERE conversation_id = new.conversation_id AND seq = new.seq
        );
    UPDATE cache_stats SET value = value + changes() WHERE name = 'messages';
    INSERT INTO message_fts(rowid, text, conv) SELECT r.rowid,
        coalesce(json_extract(CAST(new.body AS TEXT), '$.body'), ''), 'c' || k.n
        FROM search_rows r, search_keys k
        WHERE r.conversation_id = new.conversation_id AND r.seq = new.seq
        AND k.conversation_id = new.conversation_id;
END;
CREATE TRIGGER messages_search_update AFTER UPDATE OF body ON messages BEGIN
    DELETE FROM message_fts WHERE rowid = (
        SELECT rowid FROM search_rows WHERE conversation_id = old.conversation_id AND seq = old.seq
    );
    INSERT INTO message_fts(rowid, text, conv) SELECT r.rowid,
        coalesce(json_extract(CAST(new.body AS TEXT), '$.body'), ''), 'c' || k.n
        FROM search_rows r, search_keys k
        WHERE r.conversation_id = new.conversation_id AND r.seq = new.seq
        AND k.conversation_id = new.conversation_id;
END;
CREATE TRIGGER messages_search_delete AFTER DELETE ON messages BEGIN
    DELETE FROM message_fts WHERE rowid = (
        SELECT rowid FROM search_rows WHERE conversation_id = old.conversation_id AND seq = old.seq
    );
    DELETE FROM search_rows WHERE conversation_id = old.conversation_id AND seq = old.seq;
    UPDATE cache_stats SET value = value - changes() WHERE name = 'messages';
END;
CREATE TRIGGER conversations_search_insert AFTER INSERT ON conversations BEGIN
    INSERT INTO search_keys(conversation_id) SELECT new.id
        WHERE NOT EXISTS (SELECT 1 FROM search_keys WHERE conversation_id = new.id);
    DELETE FROM title_fts WHERE rowid = (SELECT n FROM search_keys WHERE conversation_id = new.id);
    INSERT INTO title_fts(rowid, title) SELECT n, json_extract(CAST(new.body AS TEXT), '$.title')
        FROM search_keys WHERE conversation_id = new.id;
END;
CREATE TRIGGER conversations_search_update AFTER UPDATE OF body ON conversations
WHEN json_extract(CAST(old.body AS TEXT), '$.title')
    IS NOT json_extract(CAST(new.body AS TEXT), '$.title')
BEGIN
    DELETE FROM title_fts WHERE rowid = (SELECT n FROM search_keys WHERE conversation_id = new.id);
    INSERT INTO title_fts(rowid, title) SELECT n, json_extract(CAST(new.body AS TEXT), '$.title')
        FROM search_keys WHERE conversation_id = new.id;
END;
CREATE TRIGGER conversations_search_delete AFTER DELETE ON conversations BEGIN
    DELETE FROM title_fts WHERE rowid = (SELECT n FROM search_keys WHERE conversation_id = old.id);
END;
-- What an older version cached: indexed now.
INSERT INTO search_keys(conversation_id) SELECT id FROM conversations;
INSERT INTO title_fts(rowid, title) SELECT k.n, json_extract(CAST(c.body AS TEXT), '$.title')
    FROM conversations c JOIN search_keys k ON k.conversation_id = c.id;
INSERT INTO search_keys(conversation_id) SELECT DISTINCT conversation_id FROM messages
    WHERE conversation_id NOT IN (SELECT conversation_id FROM search_keys);
INSERT INTO search_rows(rowid, conversation_id, seq)
    SELECT at * 1048576 + row_number() OVER (PARTITION BY at ORDER BY conversation_id, seq) - 1,
        conversation_id, seq
    FROM (SELECT conversation_id, seq,
          coalesce(json_extract(CAST(body AS TEXT), '$.created_at'), 0) AS at FROM messages);
INSERT INTO message_fts(rowid, text, conv)
    SELECT r.rowid, coalesce(json_extract(CAST(m.body AS TEXT), '$.body'), ''), 'c' || k.n
    FROM search_rows r
    JOIN messages m ON m.conversation_id = r.conversation_id AND m.seq = r.seq
    JOIN search_keys k ON k.conversation_id = r.conversation_id;
UPDATE cache_stats SET value = (SELECT count(*) FROM messages) WHERE name = 'messages';
""",
)

CACHE_VERSION = len(STEPS)


class SchemaTooNew(RuntimeError):
    """The database was written by a newer Concord than this one."""

    def __init__(self, what: str, found: int, known: int, advice: str) -> None:
        self.found, self.known = found, known
        super().__init__(
            f"this {what} was written by a newer Concord (schema {found}; this app knows "
            f"{known}): {advice}"
        )


class CacheTooNew(SchemaTooNew):
    """A newer Concord's cache that holds something not on the server yet: never dropped."""

    def __init__(self, path: Path, found: int, known: int, unsent: int | None) -> None:
        held = "things not sent yet" if unsent is None else f"{unsent} thing(s) not sent yet"
        super().__init__(
            f"cache ({path})",
            found,
            known,
            f"it holds {held}; open this profile with the newer Concord to send them, "
            "then this version can start over from the server",
        )
        self.path, self.unsent = path, unsent


def statements(script: str) -> Iterator[str]:
    """The statements of a SQL script, one by one (``executescript`` would commit first)."""
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            yield buf
            buf = ""
    rest = "".join(line for line in buf.splitlines() if not line.strip().startswith("--"))
    if rest.strip():
        raise ValueError(f"incomplete SQL statement: {rest.strip()[:80]!r}")


def user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, steps: tuple[Step, ...]) -> int:
    """Bring the database (autocommit connection) to ``len(steps)``; returns the version it had.
    Raises :class:`SchemaTooNew` (``what="database"``) when it is newer than that."""
    start = found = user_version(conn)
    for target, step in enumerate(steps, start=1):
        if found >= target:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            found = user_version(conn)  # another process may have got here first
            if found < target:
                if callable(step):
                    step(conn)
                else:
                    for statement in statements(step):
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version={target}")
                found = target
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    if found > len(steps):
        raise SchemaTooNew("database", found, len(steps), "upgrade Concord")
    return start


def _unsent(conn: sqlite3.Connection) -> int | None:
    """Outbox entries the server has not acknowledged (queued, held, failed) plus drafts, in a
    newer cache; None when its tables are not what this version can read (assume some)."""
    try:
        outbox = conn.execute("SELECT count(*) FROM outbox WHERE state<>'sent'").fetchone()[0]
        drafts = conn.execute("SELECT count(*) FROM drafts").fetchone()[0]
    except sqlite3.DatabaseError:
        return None
    return int(outbox) + int(drafts)


def _start_over(conn: sqlite3.Connection, path: Path, found: int) -> Path | None:
    """Copy the newer cache aside, then empty it in one transaction, checked again inside it (a
    newer process of the profile may be writing); None when another process did it first."""
    backup = path.with_name(f"{path.name}.schema{found}-{int(time.time() * 1000)}.bak")
    conn.execute("VACUUM INTO ?", (str(backup),))
    conn.execute("BEGIN IMMEDIATE")
    try:
        now = user_version(conn)
        unsent = _unsent(conn)
        if now <= CACHE_VERSION or unsent != 0:  # migrated meanwhile, or something was queued
            conn.execute("ROLLBACK")
            backup.unlink(missing_ok=True)
            if now <= CACHE_VERSION:
                return None
            raise CacheTooNew(path, now, CACHE_VERSION, unsent)
        objects = conn.execute(
            "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
            "AND type IN ('table', 'view', 'trigger')"
        ).fetchall()
        for kind, name in sorted(objects, key=lambda o: o[0] != "trigger"):
            conn.execute(f'DROP {kind.upper()} IF EXISTS "{name}"')
        conn.execute("PRAGMA user_version=0")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return backup


def open_cache(conn: sqlite3.Connection, path: Path) -> Path | None:
    """Migrate the cache to :data:`CACHE_VERSION`. Returns the backup's path when the cache was
    a newer Concord's and this version started over.

    A newer cache is a copy of the server's data plus what the user has not sent yet (outbox
    entries the server has not acknowledged, drafts). When it holds none of the latter, nothing
    can be lost: it is copied aside (``cache.db.schema<N>-<ms>.bak``) and emptied, and the app
    starts over with a full sync — an older app is never locked out by a cache. When it holds
    any (or its tables cannot be read), :class:`CacheTooNew` is raised and the file is left as
    it is: a queued action or a draft is never dropped for the sake of starting.
    """
    try:
        migrate(conn, STEPS)
        return None
    except SchemaTooNew as exc:
        unsent = _unsent(conn)
        if unsent != 0:
            raise CacheTooNew(path, exc.found, exc.known, unsent) from None
    backup = _start_over(conn, path, user_version(conn))
    migrate(conn, STEPS)
    if backup is None:
        return None
    log.warning(
        "the cache %s was written by a newer Concord and held nothing unsent: copied to %s, "
        "starting over from the server",
        path,
        backup,
    )
    return backup
