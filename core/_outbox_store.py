"""The part of the cache that only this device has: the outbox of actions the server has not
confirmed yet, the versions this device's own patches made, and drafts. Any process of the
profile writes here; none of it is mixed into the server's tables."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from contextlib import AbstractContextManager
from typing import Any

from .model import OutboxEntry

OWN_VERSIONS_KEPT = 500  # per conversation: a queued patch is never that far behind
OPS = ("create", "patch", "delete", "send", "read", "edit_message", "delete_message")


class OutboxStore:
    """Mixed into :class:`core.store.LocalStore`, which provides these."""

    db: sqlite3.Connection

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def cursor(self) -> tuple[int, int] | None:
        raise NotImplementedError

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
        """The oldest entry waiting to be sent (held, sent and failed ones are passed over)."""
        return next((e for e in self.outbox() if e.state == "queued"), None)

    def supersede_held(self, conversation_id: str, op: str, fields: set[str]) -> None:
        """A new patch or delete of a conversation whose chain is held: the user's later action
        wins over their earlier one, so the held entries lose what it sets (a delete: all of it;
        after a held delete, the conversation is wanted after all) and go when nothing is left."""
        held = [e for e in self.outbox() if e.state == "held" and e.target == conversation_id]
        with self.transaction() as db:
            for e in held:
                if op == "delete" or e.op == "delete":
                    db.execute("DELETE FROM outbox WHERE id=?", (e.id,))
                    continue
                left = {k: v for k, v in e.body.items() if k not in fields}
                if not any(k in left for k in ("title", "pinned", "members")):
                    db.execute("DELETE FROM outbox WHERE id=?", (e.id,))
                elif left != e.body:
                    db.execute("UPDATE outbox SET body=? WHERE id=?", (json.dumps(left), e.id))

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

    def add_own_message_version(self, message_id: str, conversation_id: str, version: int) -> None:
        """This device's acknowledged edit made ``version`` of the message (kept while the
        message is: a later edit written against an older version follows it)."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO own_message_versions VALUES (?, ?, ?)",
                (message_id, conversation_id, version),
            )

    def rebased_message(self, message_id: str, base_version: int) -> int:
        """As :meth:`rebased`, for an edit of one message: past the versions this device's own
        earlier edits of it made, so a later edit never loses to an earlier one."""
        own = {
            r[0]
            for r in self.db.execute(
                "SELECT version FROM own_message_versions WHERE message_id=? AND version>?",
                (message_id, base_version),
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
