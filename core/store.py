"""The durable local cache of one profile: SQLite (WAL) shared by every process of the profile.

It holds the server's state as last seen (conversations, recent messages), the feed cursor, and
the outbox of the user's not-yet-confirmed actions. Only the leader applies server changes; any
process may append to the outbox. The cursor is written in the same transaction as the changes
it covers, and a change with ``seq <= cursor`` is skipped, so every change applies exactly once.
Unsent local actions live only in the outbox (:mod:`core._outbox_store`) and are never mixed
into the server tables. A change of a kind this version does not know (a newer server's) is
passed over, the cursor moving past it. The schema's versions: :mod:`core._migrations`.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from . import protocol as p
from ._migrations import CacheTooNew, SchemaTooNew, open_cache
from ._outbox_store import OPS, OWN_VERSIONS_KEPT, OutboxStore
from ._search_store import DEFAULT_MAX_MESSAGES, SearchStore

__all__ = [
    "OPS",
    "OWN_VERSIONS_KEPT",
    "Applied",
    "CacheTooNew",
    "LocalStore",
    "SchemaTooNew",
]

log = logging.getLogger(__name__)

RECENT_MESSAGES = 200  # read per conversation when it opens; the cache keeps every page loaded


@dataclass(slots=True)
class Applied:
    """What one batch of changes did to the cache (for fine-grained notifications)."""

    upserted: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
    messages: dict[str, list[p.Message]] = field(default_factory=dict)
    changes: list[p.Change] = field(default_factory=list)
    # Changes of kinds this version does not know: not applied, but covered by the cursor.
    skipped: list[p.Change] = field(default_factory=list)
    # A full sync's conversations this cache had never seen: their messages are history to
    # show, not arrivals to announce (no "new message" notification, no jump).
    first_seen: set[str] = field(default_factory=set)
    # Messages deleted (ids by conversation): erased from the cache, gone from every view.
    deleted: dict[str, list[str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.upserted or self.removed or self.messages or self.deleted)


_conv_decoder = msgspec.json.Decoder(p.Conversation)
_msg_decoder = msgspec.json.Decoder(p.Message)


class LocalStore(SearchStore, OutboxStore):
    """Raises :class:`CacheTooNew` for a newer Concord's cache that holds unsent actions or
    drafts; a newer cache without any is copied to ``backup`` and started over."""

    def __init__(
        self,
        path: str | Path,
        *,
        apply_log: bool = False,
        max_messages: int = DEFAULT_MAX_MESSAGES,
    ) -> None:
        self.path = Path(path)
        self.max_messages = max_messages  # evicted past it (core._search_store)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.apply_log = apply_log
        # Changes of unknown kinds passed over, by kind (each kind is logged once).
        self.skipped_kinds: dict[str, int] = {}
        self.db = sqlite3.connect(self.path, isolation_level=None, timeout=10)
        try:
            self.db.execute("PRAGMA busy_timeout=10000")
            self.db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit survives the process being killed; fsync at
            # checkpoints.
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.backup = open_cache(self.db, self.path)
        except BaseException:
            self.db.close()
            raise

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
                last = change.seq
                if change.kind not in p.CHANGE_KINDS:
                    self._skip(change, done)
                    continue
                self._apply(db, change, done)
                done.changes.append(change)
                if self.apply_log:
                    db.execute(
                        "INSERT INTO apply_log VALUES (?, ?, ?)",
                        (change.seq, change.kind, change.entity_id),
                    )
            if done.changes or done.skipped:
                self._set_meta("cursor", p.format_event_id(epoch, last))
            self._evict(db)
        return done

    def _skip(self, change: p.Change, done: Applied) -> None:
        """A newer server's kind of change: nothing here shows it, so pass over it."""
        seen = self.skipped_kinds.get(change.kind, 0)
        if not seen:
            log.info("skipping changes of kind %r, unknown to this version", change.kind)
        self.skipped_kinds[change.kind] = seen + 1
        done.skipped.append(change)

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
            db.execute("DELETE FROM own_message_versions WHERE conversation_id=?", (data.id,))
            done.removed.add(data.id)
            done.upserted.discard(data.id)
            done.messages.pop(data.id, None)
            done.deleted.pop(data.id, None)
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
            if data.message_count is not None:  # a server that knows message deletes
                count = data.message_count
            updated = msgspec.structs.replace(
                conv,
                message_count=count,
                last_seq=max(conv.last_seq or conv.message_count, msg.seq),
                read_seq=data.read_seq,
                unread=max(0, count - data.read_seq) if data.unread is None else data.unread,
                updated_at=max(conv.updated_at, msg.created_at),
            )
            db.execute("UPDATE conversations SET body=? WHERE id=?", (p.encode(updated), conv.id))
            done.upserted.add(conv.id)
            done.messages.setdefault(conv.id, []).append(msg)
        elif isinstance(data, p.ConversationRead):
            conv = self.conversation(data.conversation_id)
            if conv is None:
                return
            updated = msgspec.structs.replace(
                conv,
                read_seq=max(conv.read_seq, data.read_seq),
                unread=data.unread if data.read_seq >= conv.read_seq else conv.unread,
            )
            db.execute("UPDATE conversations SET body=? WHERE id=?", (p.encode(updated), conv.id))
            done.upserted.add(conv.id)
        elif isinstance(data, p.MessageUpdated):
            self._apply_edit(db, data.message, done)
        elif isinstance(data, p.MessageDeleted):
            self._apply_delete(db, data, done)

    def _apply_edit(self, db: sqlite3.Connection, msg: p.Message, done: Applied) -> None:
        """``message.updated``: the cached row takes the new text (a message not cached is
        brought as it is now by the page that fetches it later)."""
        row = db.execute(
            "SELECT body FROM messages WHERE conversation_id=? AND seq=?",
            (msg.conversation_id, msg.seq),
        ).fetchone()
        if row is None or _msg_decoder.decode(row[0]).version >= msg.version:
            return
        db.execute(
            "UPDATE messages SET body=? WHERE conversation_id=? AND seq=?",
            (p.encode(msg), msg.conversation_id, msg.seq),
        )
        done.messages.setdefault(msg.conversation_id, []).append(msg)

    def _apply_delete(self, db: sqlite3.Connection, data: p.MessageDeleted, done: Applied) -> None:
        """``message.deleted``: the row goes (its text is erased from the cache) and the
        conversation takes the server's counts."""
        cid = data.conversation_id
        db.execute("DELETE FROM messages WHERE conversation_id=? AND seq=?", (cid, data.seq))
        db.execute("DELETE FROM own_message_versions WHERE message_id=?", (data.id,))
        done.deleted.setdefault(cid, []).append(data.id)
        conv = self.conversation(cid)
        if conv is None:
            return
        updated = msgspec.structs.replace(
            conv,
            message_count=data.message_count,
            read_seq=max(conv.read_seq, data.read_seq),
            unread=data.unread,
        )
        db.execute("UPDATE conversations SET body=? WHERE id=?", (p.encode(updated), cid))
        done.upserted.add(cid)

    def apply_snapshot(self, snap: p.Snapshot) -> Applied:
        """Replace the server state with a snapshot; local rows absent from it are deleted."""
        done = Applied()
        old = self.cursor()
        with self.transaction() as db:
            if old is not None and old[0] != snap.epoch:
                # Acked actions' seqs belong to the old epoch: the snapshot is the new truth.
                db.execute("DELETE FROM outbox WHERE state='sent'")
                db.execute("DELETE FROM own_versions")
                db.execute("DELETE FROM own_message_versions")
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
            for cid in set(snap.messages) | set(snap.deleted) | set(snap.edited):
                msgs = snap.messages.get(cid, [])
                have = {
                    r[0]: (r[1], r[2])
                    for r in db.execute(
                        "SELECT seq, id, body FROM messages WHERE conversation_id=?", (cid,)
                    )
                }
                # New, or changed since they were cached: written (an edit replaces the row); shown
                # when new or edited (not when only an older version's encoding differs).
                written = [m for m in msgs if have.get(m.seq, ("", b""))[1] != p.encode(m)]
                db.executemany(  # UPDATE, not REPLACE: triggers on the table see an update
                    "UPDATE messages SET body=? WHERE conversation_id=? AND seq=?",
                    [(p.encode(m), cid, m.seq) for m in written if m.seq in have],
                )
                db.executemany(
                    "INSERT OR IGNORE INTO messages VALUES (?, ?, ?, ?)",
                    [(m.conversation_id, m.seq, m.id, p.encode(m)) for m in written],
                )
                fresh = [
                    m
                    for m in written
                    if m.seq not in have or _msg_decoder.decode(have[m.seq][1]).version != m.version
                ]
                # Edited since, older than the page: the cached ones take the new text.
                older = [
                    m
                    for m in snap.edited.get(cid, [])
                    if m.seq in have and _msg_decoder.decode(have[m.seq][1]).version < m.version
                ]
                db.executemany(
                    "UPDATE messages SET body=? WHERE conversation_id=? AND seq=?",
                    [(p.encode(m), cid, m.seq) for m in older],
                )
                fresh += older
                # Deleted since: cached within the page but not in it, or named as deleted.
                page = {m.seq for m in msgs}
                low = msgs[0].seq if msgs else None
                gone = {q for q in have if low is not None and q >= low and q not in page}
                gone |= {q for q in snap.deleted.get(cid, []) if q in have}
                db.executemany(
                    "DELETE FROM messages WHERE conversation_id=? AND seq=?",
                    [(cid, q) for q in sorted(gone)],
                )
                if gone and cid not in done.first_seen:
                    done.deleted[cid] = [have[q][0] for q in sorted(gone)]
                if fresh and cid not in done.first_seen:
                    done.messages[cid] = fresh
                if msgs:
                    deleted = set(snap.deleted.get(cid, []))
                    self._drop_unconnected(db, cid, min(m.seq for m in msgs), deleted)
            self._set_meta("cursor", p.format_event_id(snap.epoch, snap.head))
            self._set_meta("full_sync_at", str(int(time.time() * 1000)))
            self._rebuild_search(db, messages=not self.search_index_ok())
            self._evict(db)
        return done

    def messages_at(
        self, conversation_id: str, seqs: Iterable[int] = (), ids: Iterable[str] = ()
    ) -> list[p.Message]:
        """The cached messages of a conversation with these seqs or ids, in seq order."""
        seq_list, id_list = sorted(set(seqs)), sorted(set(ids))
        rows = []
        for start in range(0, len(seq_list), 500):
            chunk = seq_list[start : start + 500]
            rows += self.db.execute(
                "SELECT seq, body FROM messages WHERE conversation_id=? "
                f"AND seq IN ({','.join('?' * len(chunk))})",
                (conversation_id, *chunk),
            ).fetchall()
        for start in range(0, len(id_list), 500):
            id_chunk = id_list[start : start + 500]
            rows += self.db.execute(
                "SELECT seq, body FROM messages WHERE conversation_id=? "
                f"AND id IN ({','.join('?' * len(id_chunk))})",
                (conversation_id, *id_chunk),
            ).fetchall()
        return [_msg_decoder.decode(body) for _, body in sorted(dict(rows).items())]

    def add_messages(self, messages: list[p.Message]) -> None:
        """Older pages fetched on demand (not covered by the cursor: messages are immutable)."""
        with self.transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO messages VALUES (?, ?, ?, ?)",
                [(m.conversation_id, m.seq, m.id, p.encode(m)) for m in messages],
            )
            self._evict(db)
