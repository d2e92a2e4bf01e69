"""``ReadModel``: what the user sees, kept in memory and up to date (docs/architecture.md §5.9).

The server's conversations from the shared cache with this device's pending outbox entries laid
over them (``core.model``). It is told which rows changed — by this process's engine or over the
bus — re-reads just those from the cache, and emits ``conversation_changed`` /
``conversation_removed`` / ``messages_added`` / ``outbox_changed`` for what really changed.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Collection, Iterable

from . import protocol as p
from .events import ClientEvents
from .model import (
    MESSAGE_OPS,
    ConversationView,
    MessageView,
    OutboxEntry,
    conversation_view,
    gone,
    group_by_target,
    last_message,
    message_view,
    pending_messages,
    sort_key,
    with_pending_changes,
)
from .store import LocalStore

__all__ = ["ReadModel"]


class ReadModel:
    """Views by conversation id, recomputed per conversation (never for the whole list)."""

    def __init__(self, store: LocalStore, me: str, events: ClientEvents) -> None:
        self.store = store
        self.me = me
        self.events = events
        self._server: dict[str, p.Conversation] = store.conversations()
        self._pending: dict[str, list[OutboxEntry]] = group_by_target(store.outbox())
        self._views: dict[str, ConversationView] = {}
        for cid in set(self._server) | set(self._pending):
            view = self._view(cid)
            if view is not None:
                self._views[cid] = view
        self._changed = asyncio.Event()

    # --- reading ---------------------------------------------------------------------------------

    def conversations(self) -> list[ConversationView]:
        """Pinned first, then most recently updated; each with unread count and pending flag."""
        return sorted(self._views.values(), key=sort_key)

    def conversation(self, conversation_id: str) -> ConversationView | None:
        return self._views.get(conversation_id)

    def conversation_ids(self) -> Iterable[str]:
        return self._views.keys()

    def messages(self, conversation_id: str) -> list[MessageView]:
        """The cached messages, then the pending sends not yet among them; this device's
        pending edits laid over them, and pending deletes left out."""
        server = [message_view(m) for m in self.store.messages(conversation_id)]
        ids = {m.id for m in server}
        entries = self._pending.get(conversation_id, [])
        pending = pending_messages(entries, self.me)
        return with_pending_changes(server + [m for m in pending if m.id not in ids], entries)

    def message(self, conversation_id: str, message_id: str) -> MessageView | None:
        """One message as shown (None when it is not cached, deleted, or being deleted)."""
        [view] = self._message_views(conversation_id, [message_id])
        return None if view.deleted else view

    def _message_views(self, cid: str, ids: Collection[str]) -> list[MessageView]:
        """These messages as shown, cached or pending; :func:`gone` for those that are not."""
        entries = self._pending.get(cid, [])
        found = [message_view(m) for m in self.store.messages_at(cid, ids=ids)]
        have = {m.id for m in found}
        found += [m for m in pending_messages(entries, self.me) if m.id in ids and m.id not in have]
        shown = {m.id: m for m in with_pending_changes(found, entries)}
        return [shown.get(mid) or gone(cid, mid) for mid in ids]

    def unread(self, conversation_id: str) -> int:
        view = self._views.get(conversation_id)
        return view.unread if view else 0

    def total_unread(self) -> int:
        return sum(v.unread for v in self._views.values())

    def failed_entry_ids(self) -> list[int]:
        """The outbox entries the server refused (``failed``), of every conversation."""
        return [e.id for es in self._pending.values() for e in es if e.state == "failed"]

    async def next_change(self) -> None:
        """Until the views are next recomputed (whether or not any of them changed)."""
        await self._changed.wait()

    # --- keeping it current ----------------------------------------------------------------------

    def resync(self) -> None:
        """Re-read everything from the shared cache: after a bus gap or a failover a process may
        have missed ``applied``/``outbox`` posts, but never the cache itself."""
        fresh = self.store.conversations()
        changed = {
            cid for cid in set(fresh) | set(self._server) if fresh.get(cid) != self._server.get(cid)
        }
        self._server = fresh
        changed |= self._load_outbox()
        self._refresh(changed)
        for cid in changed:
            if cid in self._views:
                messages = self.messages(cid)
                self.events.messages_added.emit(cid, messages)
                self.events.messages_reloaded.emit(cid, messages)

    def rows_changed(
        self,
        upserted: Collection[str],
        removed: Collection[str],
        messages: dict[str, list[int]],
        deleted: dict[str, list[str]] | None = None,
    ) -> None:
        """These conversation rows, these messages (seqs by conversation) and these deleted
        messages (ids by conversation) changed in the cache."""
        deleted = deleted or {}
        for cid in upserted:
            conv = self.store.conversation(cid)
            if conv is None:
                self._server.pop(cid, None)
            else:
                self._server[cid] = conv
        for cid in removed:
            self._server.pop(cid, None)
        self._refresh(set(upserted) | set(removed) | set(messages) | set(deleted))  # the preview
        for cid, seqs in messages.items():
            if cid in self._views and seqs:
                entries = self._pending.get(cid, [])
                cached = [message_view(m) for m in self.store.messages_at(cid, seqs=seqs)]
                added = with_pending_changes(cached, entries)
                if added:
                    self.events.messages_added.emit(cid, added)
        for cid, ids in deleted.items():
            if cid in self._views and ids:
                self.events.messages_added.emit(cid, [gone(cid, mid) for mid in ids])

    def outbox_changed(self) -> None:
        """The outbox table changed: re-read it and lay it over the views again."""
        old = self._pending
        changed = self._load_outbox()
        self._refresh(changed)
        for cid in changed:
            # Every pending send of the conversation, not only new ones: views replace a message
            # by id, so one that changed state since (failed) is shown as it is now.
            pending = with_pending_changes(
                pending_messages(self._pending.get(cid, []), self.me), self._pending.get(cid, [])
            )
            # Messages whose edit or delete was queued, confirmed or rolled back: as they are now.
            touched = _edited_ids(old.get(cid, [])) | _edited_ids(self._pending.get(cid, []))
            touched -= {m.id for m in pending}
            shown = pending + self._message_views(cid, sorted(touched))
            if shown:
                self.events.messages_added.emit(cid, shown)
        if changed and self.events.outbox_changed.connected:
            unsent = sum(e.state in ("queued", "sent") for es in self._pending.values() for e in es)
            self.events.outbox_changed.emit(unsent)

    def _load_outbox(self) -> set[str]:
        """Reload the outbox; returns the conversations whose pending actions changed."""
        old = self._pending
        self._pending = group_by_target(self.store.outbox())
        return {
            cid for cid in set(old) | set(self._pending) if old.get(cid) != self._pending.get(cid)
        }

    def _view(self, cid: str) -> ConversationView | None:
        """The conversation with its pending actions and the preview of its newest message."""
        pending = self._pending.get(cid, [])
        view = conversation_view(self._server.get(cid), pending, self.me)
        if view is None:
            return None
        if any(e.op in ("send", *MESSAGE_OPS) for e in pending):  # rare and brief
            newest = self.messages(cid)[-1:]
        else:  # one indexed row
            newest = [message_view(m) for m in self.store.messages(cid, 1)]
        return dataclasses.replace(view, last=last_message(newest, self.me))

    def _refresh(self, cids: set[str]) -> None:
        for cid in cids:
            view = self._view(cid)
            old = self._views.get(cid)
            if view is None:
                if self._views.pop(cid, None) is not None:
                    self.events.conversation_removed.emit(cid)
            elif view != old:
                self._views[cid] = view
                self.events.conversation_changed.emit(view)
        self._changed.set()
        self._changed = asyncio.Event()


def _edited_ids(entries: list[OutboxEntry]) -> set[str]:
    """The messages these outbox entries edit or delete."""
    return {str(e.body.get("id")) for e in entries if e.op in MESSAGE_OPS}
