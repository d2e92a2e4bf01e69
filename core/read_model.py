"""``ReadModel``: what the user sees, kept in memory and up to date (docs/architecture.md §5.9).

The server's conversations from the shared cache with this device's pending outbox entries laid
over them (``core.model``). It is told which rows changed — by this process's engine or over the
bus — re-reads just those from the cache, and emits ``conversation_changed`` /
``conversation_removed`` / ``messages_added`` / ``outbox_changed`` for what really changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable

from . import protocol as p
from .events import ClientEvents
from .model import (
    ConversationView,
    MessageView,
    OutboxEntry,
    conversation_view,
    group_by_target,
    message_view,
    pending_messages,
    sort_key,
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
            view = conversation_view(self._server.get(cid), self._pending.get(cid, []), me)
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
        """The cached messages, then the pending sends not yet among them."""
        server = [message_view(m) for m in self.store.messages(conversation_id)]
        ids = {m.id for m in server}
        pending = pending_messages(self._pending.get(conversation_id, []), self.me)
        return server + [m for m in pending if m.id not in ids]

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
                self.events.messages_added.emit(cid, self.messages(cid))

    def rows_changed(
        self, upserted: Collection[str], removed: Collection[str], messages: dict[str, list[int]]
    ) -> None:
        """These conversation rows, and these messages (seqs by conversation), changed in the
        cache."""
        for cid in upserted:
            conv = self.store.conversation(cid)
            if conv is None:
                self._server.pop(cid, None)
            else:
                self._server[cid] = conv
        for cid in removed:
            self._server.pop(cid, None)
        self._refresh(set(upserted) | set(removed))
        for cid, seqs in messages.items():
            if cid in self._views and seqs:
                lo = min(seqs)
                added = [message_view(m) for m in self.store.messages(cid) if m.seq >= lo]
                if added:
                    self.events.messages_added.emit(cid, added)

    def outbox_changed(self) -> None:
        """The outbox table changed: re-read it and lay it over the views again."""
        changed = self._load_outbox()
        self._refresh(changed)
        for cid in changed:
            # Every pending send of the conversation, not only new ones: views replace a message
            # by id, so one that changed state since (failed) is shown as it is now.
            pending = pending_messages(self._pending.get(cid, []), self.me)
            if pending:
                self.events.messages_added.emit(cid, pending)
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

    def _refresh(self, cids: set[str]) -> None:
        for cid in cids:
            view = conversation_view(self._server.get(cid), self._pending.get(cid, []), self.me)
            old = self._views.get(cid)
            if view is None:
                if self._views.pop(cid, None) is not None:
                    self.events.conversation_removed.emit(cid)
            elif view != old:
                self._views[cid] = view
                self.events.conversation_changed.emit(view)
        self._changed.set()
        self._changed = asyncio.Event()
