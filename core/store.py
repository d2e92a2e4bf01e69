"""The durable local cache of one profile: SQLite (WAL) shared by every process of the profile.

It holds the server's state as last seen (conversations, recent messages), the feed cursor, and
the outbox of the user's not-yet-confirmed actions. Only the leader applies server changes; any
process may append to the outbox. The cursor is written in the same transaction as the changes
it covers, and a change with ``seq <= cursor`` is skipped, so every change applies exactly once.
Unsent local actions live only in the outbox and are never mixed into the server tables.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from . import protocol as p
from .model import OutboxEntry

RECENT_MESSAGES = 200  # kept per conversation; older pages are fetched on demand
OWN_VERSIONS_KEPT = 500  # per conversation: a queued patch is never that far behind

SCHEMA = """
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
"""

OPS = ("create", "patch", "delete", "send", "read")


@dataclass(slots=True)
class Applied:
    """What one batch of changes did to the cache (for fine-grained notifications)."""

    upserted: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
    messages: dict[str, list[p.Message]] = field(default_factory=dict)
    changes: list[p.Change] = field(default_factory=list)
    # A full sync's conversations this cache had never seen: their messages are history to
    # show, not arrivals to announce (no "new message" notification, no jump).
    first_seen: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.upserted or self.removed or self.messages)


_conv_decoder = msgspec.json.Decoder(p.Conversation)
_msg_decoder = msgspec.json.Decoder(p.Message)


class LocalStore:
    def __init__(self, path: str | Path, *, apply_log: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.apply_log = apply_log
        self.db = sqlite3.connect(self.path, isolation_level=None, timeout=10)
        self.db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives the process being killed; fsync at checkpoints.
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=10000")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # --- meta -----------------------------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def cursor(self) -> tuple[int, int] | None:
        """(epoch, seq) of the last applied change, or None before the first full sync."""
        value = self._meta("cursor")
        return p.parse_event_id(value) if value else None

    def cursor_id(self) -> str | None:
        return self._meta("cursor")

    def get(self, key: str) -> str | None:
        return self._meta(key)

    def put(self, key: str, value: str) -> None:
        with self.transaction():
            self._set_meta(key, value)

    # --- reads -----------------------------------------------------------------------------------

    def conversations(self) -> dict[str, p.Conversation]:
        rows = self.db.execute("SELECT body FROM conversations").fetchall()
        out = {}
        for (body,) in rows:
            conv = _conv_decoder.decode(body)
            out[conv.id] = conv
        return out

    def conversation(self, conversation_id: str) -> p.Conversation | None:
        row = self.db.execute(
            "SELECT body FROM conversations WHERE id=?", (conversation_id,)
        ).fetchone()
        return _conv_decoder.decode(row[0]) if row else None

    def messages(self, conversation_id: str, limit: int = RECENT_MESSAGES) -> list[p.Message]:
        rows = self.db.execute(
            "SELECT body FROM messages WHERE conversation_id=? ORDER BY seq DESC LIMIT ?",
            (conversation_id, limit),
        ).fetchall()
        return [_msg_decoder.decode(r[0]) for r in reversed(rows)]

    def applied_log(self) -> list[tuple[int, str, str]]:
        return self.db.execute("SELECT seq, kind, entity FROM apply_log ORDER BY rowid").fetchall()

    # --- applying the server's truth (leader only) -----------------------------------------------

    def apply_changes(self, epoch: int, changes: list[p.Change]) -> Applied:
        """Apply a batch in one transaction with the cursor; skips ``seq <= cursor``."""
        done = Applied()
        with self.transaction() as db:
            cur = self.cursor()
            last = cur[1] if cur and cur[0] == epoch else 0
            for change in changes:
                if change.seq <= last:
                    continue
                self._apply(db, change, done)
                last = change.seq
                done.changes.append(change)
                if self.apply_log:
                    db.execute(
                        "INSERT INTO apply_log VALUES (?, ?, ?)",
                        (change.seq, change.kind, change.entity_id),
                    )
            if done.changes:
                self._set_meta("cursor", p.format_event_id(epoch, last))
        return done

    def _apply(self, db: sqlite3.Connection, change: p.Change, done: Applied) -> None:
        data = p.change_data(change)
        if isinstance(data, p.Conversation):
            old = self.conversation(data.id)
            if old is None or old.version <= data.version:
                db.execute(
                    "INSERT OR REPLACE INTO conversations VALUES (?, ?)", (data.id, p.encode(data))
                )
                done.upserted.add(data.id)
                done.removed.discard(data.id)
        elif isinstance(data, p.ConversationDeleted):
            db.execute("DELETE FROM conversations WHERE id=?", (data.id,))
            db.execute("DELETE FROM messages WHERE conversation_id=?", (data.id,))
            db.execute("DELETE FROM own_versions WHERE conversation_id=?", (data.id,))
            done.removed.add(data.id)
            done.upserted.discard(data.id)
            done.messages.pop(data.id, None)
        elif isinstance(data, p.MessageCreated):
            msg = data.message
            conv = self.conversation(msg.conversation_id)
            if conv is None:
                return  # not visible (yet): the conversation's own change brings it
            db.execute(
                "INSERT OR IGNORE INTO messages VALUES (?, ?, ?, ?)",
                (msg.conversation_id, msg.seq, msg.id, p.encode(msg)),
            )
            count = max(conv.message_count, msg.seq)
            updated = msgspec.structs.replace(
                conv,
                message_count=count,
                read_seq=data.read_seq,
                unread=max(0, count - data.read_seq),
                updated_at=max(conv.updated_at, msg.created_at),
            )
            db.execute("UPDATE conversations SET body=? WHERE id=?", (p.encode(updated), conv.id))
            db.execute(
                "DELETE FROM messages WHERE conversation_id=? AND seq<=?",
                (conv.id, count - RECENT_MESSAGES),
            )
            done.upserted.add(conv.id)
            done.messages.setdefault(conv.id, []).append(msg)
        elif isinstance(data, p.ConversationRead):
            conv = self.conversation(data.conversation_id)
            if conv is None:
                return
            updated = msgspec.structs.replace(
                conv,
                read_seq=max(conv.read_seq, data.read_seq),
                unread=max(0, conv.message_count - max(conv.read_seq, data.read_seq)),
            )
            db.execute("UPDATE conversations SET body=? WHERE id=?", (p.encode(updated), conv.id))
            done.upserted.add(conv.id)

    def apply_snapshot(self, snap: p.Snapshot) -> Applied:
        """Replace the server state with a snapshot; local rows absent from it are deleted."""
        done = Applied()
        old = self.cursor()
        with self.transaction() as db:
            if old is not None and old[0] != snap.epoch:
                # Acked actions' seqs belong to the old epoch: the snapshot is the new truth.
                db.execute("DELETE FROM outbox WHERE state='sent'")
                db.execute("DELETE FROM own_versions")
            before = {r[0] for r in db.execute("SELECT id FROM conversations")}
            seen = set()
            for conv in snap.conversations:
                seen.add(conv.id)
                db.execute(
                    "INSERT OR REPLACE INTO conversations VALUES (?, ?)", (conv.id, p.encode(conv))
                )
                done.upserted.add(conv.id)
            for cid in before - seen:
                db.execute("DELETE FROM conversations WHERE id=?", (cid,))
                db.execute("DELETE FROM messages WHERE conversation_id=?", (cid,))
                db.execute("DELETE FROM own_versions WHERE conversation_id=?", (cid,))
                done.removed.add(cid)
            done.first_seen = seen - before
            for cid, msgs in snap.messages.items():
                have = {
                    r[0]
                    for r in db.execute("SELECT seq FROM messages WHERE conversation_id=?", (cid,))
                }
                db.executemany(
                    "INSERT OR IGNORE INTO messages VALUES (?, ?, ?, ?)",
                    [(m.conversation_id, m.seq, m.id, p.encode(m)) for m in msgs],
                )
                fresh = [m for m in msgs if m.seq not in have]
                if fresh and cid not in done.first_seen:
                    done.messages[cid] = fresh
            self._set_meta("cursor", p.format_event_id(snap.epoch, snap.head))
            self._set_meta("full_sync_at", str(int(time.time() * 1000)))
        return done

    def add_messages(self, messages: list[p.Message]) -> None:
        """Older pages fetched on demand (not covered by the cursor: messages are immutable)."""
        with self.transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO messages VALUES (?, ?, ?, ?)",
                [(m.conversation_id, m.seq, m.id, p.encode(m)) for m in messages],
            )

    # --- the outbox (any process) ----------------------------------------------------------------

    def enqueue(self, op: str, target: str, body: dict[str, Any]) -> OutboxEntry:
        """Durably record a user action; returns once it is committed."""
        if op not in OPS:
            raise ValueError(f"unknown outbox op {op!r}")
        now = int(time.time() * 1000)
        text = json.dumps(body)
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO outbox (op, target, body, created_at) VALUES (?, ?, ?, ?)",
                (op, target, text, now),
            )
        return OutboxEntry(int(cur.lastrowid or 0), op, target, body, now)

    def outbox(self) -> list[OutboxEntry]:
        rows = self.db.execute(
            "SELECT id, op, target, body, created_at, state, acked_seq, attempts, error "
            "FROM outbox ORDER BY id"
        ).fetchall()
        return [
            OutboxEntry(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6], r[7], r[8])
            for r in rows
        ]

    def next_queued(self) -> OutboxEntry | None:
        """The oldest entry waiting to be sent. Held, sent and failed ones are passed over, and
        so are patches and deletes of a conversation whose chain is held: a later edit never
        overtakes the user's answer to the conflict."""
        entries = self.outbox()
        held = {e.target for e in entries if e.state == "held"}
        return next(
            (
                e
                for e in entries
                if e.state == "queued" and not (e.target in held and e.op in ("patch", "delete"))
            ),
            None,
        )

    def begin_attempt(self, entry: OutboxEntry) -> str:
        """Count a send attempt and return the entry's operation id (its idempotency key),
        made durable first: every retry of one action, by any leader, carries the same key."""
        op_id = entry.body.get("op")
        with self.transaction() as db:
            if not isinstance(op_id, str):
                op_id = entry.body["op"] = str(uuid.uuid4())  # an entry queued by 0.1.0
                db.execute(
                    "UPDATE outbox SET body=? WHERE id=?", (json.dumps(entry.body), entry.id)
                )
            db.execute("UPDATE outbox SET attempts=attempts+1 WHERE id=?", (entry.id,))
        return op_id

    def mark_acked(self, entry_id: int, seq: int, made: tuple[str, int] | None = None) -> None:
        """The server took the action; ``made`` is the (conversation, version) a patch made."""
        with self.transaction() as db:
            db.execute(
                "UPDATE outbox SET state='sent', acked_seq=?, error=NULL WHERE id=?",
                (seq, entry_id),
            )
            if made is not None:  # kept (a few hundred a conversation) until it is deleted
                db.execute("INSERT OR IGNORE INTO own_versions VALUES (?, ?)", made)
                db.execute(
                    "DELETE FROM own_versions WHERE conversation_id=? AND version<?",
                    (made[0], made[1] - OWN_VERSIONS_KEPT),
                )

    def rebased(self, conversation_id: str, base_version: int) -> int:
        """The version a patch written against ``base_version`` applies to: past every later
        version that this device's own earlier patches made (each adds exactly one)."""
        own = {
            r[0]
            for r in self.db.execute(
                "SELECT version FROM own_versions WHERE conversation_id=? AND version>?",
                (conversation_id, base_version),
            )
        }
        while base_version + 1 in own:
            base_version += 1
        return base_version

    def hold_chain(self, conversation_id: str, from_id: int) -> list[OutboxEntry]:
        """A real conflict: hold this device's remaining patches and deletes of the
        conversation (from entry ``from_id`` on) until the user chooses; returns them."""
        with self.transaction() as db:
            db.execute(
                "UPDATE outbox SET state='held' WHERE target=? AND id>=? AND state='queued' "
                "AND op IN ('patch', 'delete')",
                (conversation_id, from_id),
            )
        return self.held(conversation_id)

    def held(self, conversation_id: str | None = None) -> list[OutboxEntry]:
        return [
            e for e in self.outbox() if e.state == "held" and conversation_id in (None, e.target)
        ]

    def requeue_held(self) -> None:
        with self.transaction() as db:
            db.execute("UPDATE outbox SET state='queued' WHERE state='held'")

    def release_held(self, entry_ids: list[int], base_version: int) -> list[int]:
        """Keep mine: the chain goes out again, on top of ``base_version`` (the entries may be
        held, or queued again by a new leader meanwhile); returns the ids still there."""
        wanted = set(entry_ids)
        chain = [e for e in self.outbox() if e.id in wanted and e.state in ("held", "queued")]
        with self.transaction() as db:
            for e in chain:
                e.body["base_version"] = base_version
                db.execute(
                    "UPDATE outbox SET state='queued', body=? WHERE id=?",
                    (json.dumps(e.body), e.id),
                )
        return [e.id for e in chain]

    def drop_chain(self, conversation_id: str, from_id: int) -> list[int]:
        """Remove the remaining patches and deletes of a conversation that is gone."""
        rows = self.db.execute(
            "SELECT id FROM outbox WHERE target=? AND id>=? AND state IN ('queued', 'held') "
            "AND op IN ('patch', 'delete')",
            (conversation_id, from_id),
        ).fetchall()
        ids = [r[0] for r in rows]
        self.remove(ids)
        return ids

    def mark_failed(self, entry_id: int, error: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE outbox SET state='failed', error=? WHERE id=?", (error, entry_id))

    def remove(self, entry_ids: list[int]) -> None:
        if not entry_ids:
            return
        with self.transaction() as db:
            db.executemany("DELETE FROM outbox WHERE id=?", [(i,) for i in entry_ids])

    def settle(self) -> list[int]:
        """Drop acked entries whose change the cursor now covers; returns their ids."""
        cur = self.cursor()
        if cur is None:
            return []
        rows = self.db.execute(
            "SELECT id FROM outbox WHERE state='sent' AND acked_seq<=?", (cur[1],)
        ).fetchall()
        ids = [r[0] for r in rows]
        self.remove(ids)
        return ids

    # --- drafts (any process) --------------------------------------------------------------------

    def draft(self, conversation_id: str) -> str:
        """The unsent text of a conversation ("" when there is none)."""
        row = self.db.execute(
            "SELECT text FROM drafts WHERE conversation_id=?", (conversation_id,)
        ).fetchone()
        return str(row[0]) if row else ""

    def set_draft(self, conversation_id: str, text: str) -> None:
        """Store a draft; empty text deletes it."""
        with self.transaction() as db:
            if text:
                db.execute(
                    "INSERT OR REPLACE INTO drafts VALUES (?, ?, ?)",
                    (conversation_id, text, int(time.time() * 1000)),
                )
            else:
                db.execute("DELETE FROM drafts WHERE conversation_id=?", (conversation_id,))

    def take_draft(self, conversation_id: str) -> str:
        """Read and delete a draft at once: of several processes, exactly one gets the text."""
        with self.transaction() as db:
            rows = db.execute(  # fetchall: a RETURNING statement must finish before COMMIT
                "DELETE FROM drafts WHERE conversation_id=? RETURNING text", (conversation_id,)
            ).fetchall()
        return str(rows[0][0]) if rows else ""

    def drafts(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT conversation_id, text FROM drafts").fetchall())
