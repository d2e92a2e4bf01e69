"""The server database's schema, as ordered migration steps.

Scheme: the version is SQLite's ``PRAGMA user_version``, mirrored in ``meta.schema_version``
(which 0.1.0 already wrote as ``'1'`` without setting ``user_version``); a database's version is
the larger of the two. ``STEPS[n - 1]`` takes a database from version ``n - 1`` to ``n``; a fresh
file runs every step. Each step runs in one ``BEGIN IMMEDIATE`` transaction together with both
version bumps, re-reading the version inside it, so a crash leaves the database at a whole
version. Released steps are never edited; a release that changes the schema appends a step (a SQL
script, or a function for data rewrites).

* 1: the schema of Concord 0.1.0, exactly (``IF NOT EXISTS``: a no-op on 0.1.0's databases).
* 2: ``operations`` (idempotency keys) and its index (``IF NOT EXISTS``: pre-release builds
  already made them).
* 3: message edits and deletes: ``messages.version``/``edited_at``/``deleted`` (a deleted
  message stays as a tombstone with its text erased, so its id and seq are never reused),
  ``conversations.last_seq`` (the seq counter; ``message_count`` counts the messages that exist)
  and ``members.unread`` (other members' existing messages after the read position).
* 4: ``message_search`` (FTS5, external content: the bodies stay in ``messages``), its rowids
  ``message_search_rows`` and the triggers that keep it right; existing messages are indexed.
* 5: ``sessions`` (refresh tokens that rotate, one row per signed-in device: the current token's
  hash, the one it replaced for the grace window, the revocation) and ``tokens.session``; each
  old refresh token becomes a session of its own.

A database of a version above :data:`DB_VERSION` was written by a newer server: opening it
raises :class:`DatabaseTooNew` and changes nothing (the database is the truth; nothing is reset).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

Step = str | Callable[[sqlite3.Connection], None]

STEPS: tuple[Step, ...] = (
    # 1 — Concord 0.1.0
    """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    kind TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tokens_expiry ON tokens(expires_at);
CREATE TABLE IF NOT EXISTS feeds (
    user_id INTEGER PRIMARY KEY REFERENCES users(id),
    head INTEGER NOT NULL,
    min_retained INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS changes (
    user_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (user_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    pinned INTEGER NOT NULL,
    version INTEGER NOT NULL,
    creator_id INTEGER NOT NULL REFERENCES users(id),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    message_count INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    origin TEXT NOT NULL,
    creator_seq INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS members (
    conversation_id TEXT NOT NULL,
    user_id INTEGER NOT NULL,
    read_seq INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (conversation_id, user_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS members_by_user ON members(user_id);
CREATE TABLE IF NOT EXISTS messages (
    conversation_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    id TEXT NOT NULL UNIQUE,
    author_id INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    author_seq INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, seq)
) WITHOUT ROWID;
""",
    # 2 — idempotency keys of PATCH and DELETE
    """
CREATE TABLE IF NOT EXISTS operations (
    user_id INTEGER NOT NULL,
    op_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    version INTEGER NOT NULL,
    result BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, op_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS operations_by_age ON operations(created_at);
""",
    # 3 — message edits and deletes: versions, tombstones, a seq counter apart from the count,
    # and each member's unread count kept (deleted and own messages are not unread)
    """
ALTER TABLE conversations ADD COLUMN last_seq INTEGER NOT NULL DEFAULT 0;
UPDATE conversations SET last_seq = message_count;
ALTER TABLE messages ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE messages ADD COLUMN edited_at INTEGER;
ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN unread INTEGER NOT NULL DEFAULT 0;
UPDATE members SET unread = (
    SELECT count(*) FROM messages x WHERE x.conversation_id = members.conversation_id
    AND x.seq > members.read_seq AND x.author_id <> members.user_id
);
CREATE INDEX IF NOT EXISTS messages_deleted ON messages(conversation_id, seq) WHERE deleted = 1;
CREATE INDEX IF NOT EXISTS messages_edited ON messages(conversation_id, seq)
    WHERE version > 1 AND deleted = 0;
""",
    # 4 — full-text search over messages (GET search; docs/architecture.md §4.3): an
    # external-content FTS5 index over the message bodies, kept by triggers
    """
-- Each message's index rowid, in the order messages were written (newest = largest).
CREATE TABLE message_search_rows (
    rowid INTEGER PRIMARY KEY, conversation_id TEXT NOT NULL, seq INTEGER NOT NULL,
    UNIQUE (conversation_id, seq)
);
CREATE VIEW message_search_content AS
    SELECT r.rowid AS rid, m.body AS body FROM message_search_rows r
    JOIN messages m ON m.conversation_id = r.conversation_id AND m.seq = r.seq;
CREATE VIRTUAL TABLE message_search USING fts5(
    body, content = 'message_search_content', content_rowid = 'rid',
    tokenize = 'unicode61 remove_diacritics 2', prefix = '1 2'
);
CREATE TRIGGER messages_search_insert AFTER INSERT ON messages BEGIN
    INSERT INTO message_search_rows(conversation_id, seq) VALUES (new.conversation_id, new.seq);
    INSERT INTO message_search(rowid, body) VALUES (last_insert_rowid(), new.body);
END;
CREATE TRIGGER messages_search_update AFTER UPDATE OF body ON messages BEGIN
    INSERT INTO message_search(message_search, rowid, body)
        SELECT 'delete', rowid, old.body FROM message_search_rows
        WHERE conversation_id = old.conversation_id AND seq = old.seq;
    INSERT INTO message_search(rowid, body)
        SELECT rowid, new.body FROM message_search_rows
        WHERE conversation_id = new.conversation_id AND seq = new.seq;
END;
CREATE TRIGGER messages_search_delete AFTER DELETE ON messages BEGIN
    INSERT INTO message_search(message_search, rowid, body)
        SELECT 'delete', rowid, old.body FROM message_search_rows
        WHERE conversation_id = old.conversation_id AND seq = old.seq;
    DELETE FROM message_search_rows
        WHERE conversation_id = old.conversation_id AND seq = old.seq;
END;
INSERT INTO message_search_rows(conversation_id, seq)
    SELECT conversation_id, seq FROM messages ORDER BY created_at, conversation_id, seq;
INSERT INTO message_search(message_search) VALUES ('rebuild');
""",
    # 5 — sessions: refresh-token families that rotate (docs/architecture.md §4.9); each
    # refresh token of a schema-4 database becomes a session of its own, its access tokens
    # keep working until they expire
    """
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    created_at INTEGER NOT NULL,
    refresh_hash TEXT NOT NULL UNIQUE,
    refresh_expires_at INTEGER NOT NULL,
    previous_hash TEXT UNIQUE,
    rotated_at INTEGER,
    access_expires_at INTEGER NOT NULL DEFAULT 0,
    generation INTEGER NOT NULL DEFAULT 0,
    revoked_at INTEGER
) WITHOUT ROWID;
CREATE INDEX sessions_by_user ON sessions(user_id);
CREATE INDEX sessions_by_expiry ON sessions(refresh_expires_at);
ALTER TABLE tokens ADD COLUMN session TEXT;
CREATE INDEX tokens_by_session ON tokens(session) WHERE session IS NOT NULL;
INSERT INTO sessions (id, user_id, created_at, refresh_hash, refresh_expires_at)
    SELECT 'legacy-' || substr(hash, 1, 24), user_id, 0, hash, expires_at
    FROM tokens WHERE kind = 'refresh';
DELETE FROM tokens WHERE kind = 'refresh';
""",
)

DB_VERSION = len(STEPS)


class DatabaseTooNew(RuntimeError):
    """The database was written by a newer Concord server than this one."""

    def __init__(self, path: Path, found: int, known: int) -> None:
        self.path, self.found, self.known = path, found, known
        super().__init__(
            f"the database {path} was written by a newer Concord server (schema {found}; this "
            f"server knows {known}): run that version or a later one, or restore a backup made "
            "before the upgrade"
        )


def _statements(script: str) -> Iterator[str]:
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            yield buf
            buf = ""
    if buf.strip():
        raise ValueError(f"incomplete SQL statement: {buf.strip()[:80]!r}")


def schema_version(conn: sqlite3.Connection) -> int:
    """The larger of ``user_version`` and ``meta.schema_version`` (0 for an empty file)."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    has_meta = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
    ).fetchone()
    if has_meta:
        row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is not None and str(row[0]).isdigit():
            version = max(version, int(row[0]))
    return version


def migrate(conn: sqlite3.Connection, path: Path) -> int:
    """Bring the database (an autocommit connection) to :data:`DB_VERSION`; returns the version
    it had. Raises :class:`DatabaseTooNew`, changing nothing, when it is newer."""
    start = found = schema_version(conn)
    if found > DB_VERSION:
        raise DatabaseTooNew(path, found, DB_VERSION)
    for target, step in enumerate(STEPS, start=1):
        if found >= target:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            found = schema_version(conn)  # another process may have got here first
            if found > DB_VERSION:
                raise DatabaseTooNew(path, found, DB_VERSION)
            if found < target:
                if callable(step):
                    step(conn)
                else:
                    for statement in _statements(step):
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version={target}")
                conn.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(target),)
                )
                found = target
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return start
