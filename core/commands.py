"""``Commands``: the user's changes, committed to the outbox before they return (§5.8).

Each one is written to the shared cache's outbox first, shown at once as pending by the read
model, and the leader is told over the bus to send it. Every entry's body carries ``_origin``
(the sync-bus member that made it: a conflict is asked there) and ``op``, the operation's
idempotency key for every retry by any leader.
"""

from __future__ import annotations

import uuid
from typing import Any

from . import protocol as p
from ._drafts import Drafts
from .leadership import SyncLeadership
from .model import Conflict, ConversationView, MessageView
from .read_model import ReadModel
from .store import LocalStore

__all__ = ["Commands"]


class Commands:
    """Create, rename, pin, set members, delete, send, edit and delete messages, mark read;
    answer conflicts."""

    def __init__(
        self,
        store: LocalStore,
        me: str,
        model: ReadModel,
        drafts: Drafts,
        leadership: SyncLeadership,
    ) -> None:
        self.store = store
        self.me = me
        self.model = model
        self.drafts = drafts
        self.leadership = leadership

    def _enqueue(self, op: str, target: str, body: dict[str, Any]) -> None:
        body["_origin"] = self.leadership.member_id
        body["op"] = str(uuid.uuid4())  # the idempotency key of every retry, by any leader
        self.store.enqueue(op, target, body)
        if op in ("patch", "delete"):  # committed first: then it wins over a held chain
            self.store.supersede_held(target, op, set(body) - {"base_version", "_origin", "op"})
        self.leadership.outbox_changed()

    def _require(self, conversation_id: str) -> ConversationView:
        view = self.model.conversation(conversation_id)
        if view is None:
            raise KeyError(f"no conversation {conversation_id}")
        return view

    def create_conversation(
        self, title: str, members: tuple[str, ...] | list[str] = ()
    ) -> ConversationView:
        title = p.clean_title(title)
        cid = str(uuid.uuid4())
        self._enqueue("create", cid, {"title": title, "members": sorted(set(members) - {self.me})})
        return self._require(cid)

    def rename_conversation(self, conversation_id: str, title: str) -> None:
        view = self._require(conversation_id)
        self._enqueue(
            "patch", conversation_id, {"title": p.clean_title(title), "base_version": view.version}
        )

    def set_pinned(self, conversation_id: str, pinned: bool) -> None:
        view = self._require(conversation_id)
        self._enqueue(
            "patch", conversation_id, {"pinned": bool(pinned), "base_version": view.version}
        )

    def set_members(self, conversation_id: str, members: list[str]) -> None:
        view = self._require(conversation_id)
        self._enqueue(
            "patch",
            conversation_id,
            {"members": sorted(set(members)), "base_version": view.version},
        )

    def delete_conversation(self, conversation_id: str) -> None:
        view = self._require(conversation_id)
        self._enqueue("delete", conversation_id, {"base_version": view.version})

    def send_message(self, conversation_id: str, body: str) -> MessageView:
        self._require(conversation_id)
        body = p.well_formed(body)
        _check_body(body)
        mid = str(uuid.uuid4())
        self._enqueue("send", conversation_id, {"id": mid, "body": body})
        self.drafts.set_draft(conversation_id, "")  # sent, so cleared everywhere
        return next(m for m in self.model.messages(conversation_id) if m.id == mid)

    def _own_message(self, conversation_id: str, message_id: str) -> MessageView:
        self._require(conversation_id)
        msg = self.model.message(conversation_id, message_id)
        if msg is None:
            raise KeyError(f"no message {message_id}")
        if msg.author != self.me:
            raise ValueError("only its author can edit or delete a message")
        return msg

    def edit_message(self, conversation_id: str, message_id: str, body: str) -> MessageView:
        """The user's new text for their message: shown at once (``edit_pending``); an edit of
        a message still being sent goes out after the send."""
        msg = self._own_message(conversation_id, message_id)
        body = p.well_formed(body)
        _check_body(body)
        if body == msg.body:
            return msg
        self._enqueue(
            "edit_message",
            conversation_id,
            {"id": message_id, "body": body, "base_version": msg.version},
        )
        return self.model.message(conversation_id, message_id) or msg

    def delete_message(self, conversation_id: str, message_id: str) -> None:
        """Delete the user's message: it disappears at once (back, with an error, if refused)."""
        self._own_message(conversation_id, message_id)
        self._enqueue("delete_message", conversation_id, {"id": message_id})

    def mark_read(self, conversation_id: str) -> None:
        view = self._require(conversation_id)
        if view.unread:
            self._enqueue("read", conversation_id, {"seq": view.last_seq or view.message_count})

    def resolve_conflict(self, conflict: Conflict, keep_mine: bool) -> None:
        """ "Keep mine" sends the held chain again on top of the version the user was shown (a
        change made since is asked about again, not lost); "reload" drops it (theirs stays)."""
        ids = list(conflict.entry_ids) or [e.id for e in self.store.held(conflict.conversation_id)]
        if keep_mine and conflict.theirs is not None:
            self.store.release_held(ids, conflict.theirs.version)
        else:
            live = {e.id for e in self.store.outbox() if e.state in ("held", "queued")}
            self.store.remove([i for i in ids if i in live])
        self.leadership.outbox_changed()

    def dismiss_failed(self) -> None:
        """Drop actions the server refused (after the user has seen the error)."""
        self.store.remove(self.model.failed_entry_ids())
        self.leadership.outbox_changed()


def _check_body(body: str) -> None:
    """A message's text as the server takes it: not blank, at most 64 KiB (ValueError)."""
    if not body.strip():
        raise ValueError("a message must not be blank")
    if p.body_too_long(body):
        raise ValueError("a message is at most 64 KiB")
