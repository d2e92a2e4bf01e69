"""Drafts: one per conversation in the shared cache, so every process of the device sees it and
it survives a crash; a change is announced locally (``draft_changed``) and over the bus. A send
refused for good puts its text back (``draft_restored``: a composer being typed in appends it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .model import ConversationView
    from .outbox import Rejected
    from .relay import Relay
    from .store import LocalStore


class DraftsMixin:
    """The draft half of :class:`core.client.Client` (which provides these attributes)."""

    store: LocalStore
    relay: Relay | None
    _listeners: dict[str, list[Callable[..., None]]]
    _views: dict[str, ConversationView]

    def _emit(self, event: str, *args: Any) -> None:
        raise NotImplementedError

    def draft(self, conversation_id: str) -> str:
        """This device's unsent text for a conversation ("" when there is none)."""
        return self.store.draft(conversation_id)

    def drafts(self) -> dict[str, str]:
        """Every non-empty draft, by conversation id (some may be of conversations now gone)."""
        return self.store.drafts()

    def set_draft(self, conversation_id: str, text: str) -> None:
        """Store a draft (empty text clears it) and tell every window of this device."""
        if text == self.store.draft(conversation_id):
            return
        self.store.set_draft(conversation_id, text)
        self._draft_changed(conversation_id, text)

    def take_draft(self, conversation_id: str) -> str:
        """Remove and return a draft; of several processes asking at once, one gets the text
        (for a conversation that is gone: the UI keeps its text somewhere else)."""
        text = self.store.take_draft(conversation_id)
        if text:
            self._draft_changed(conversation_id, "")
        return text

    def _draft_changed(self, conversation_id: str, text: str) -> None:
        self._emit("draft_changed", conversation_id, text)
        if self.relay is not None:
            self.relay.post_draft(conversation_id)

    def _resync_drafts(self) -> None:
        """After a bus gap: every draft as the cache has it (listeners ignore what they show)."""
        if not self._listeners["draft_changed"]:
            return
        drafts = self.store.drafts()
        for cid in set(self._views) | set(drafts):
            self._emit("draft_changed", cid, drafts.get(cid, ""))

    def _draft_changed_elsewhere(self, conversation_id: str) -> None:
        """Another process changed a draft: the text is read from the shared cache."""
        self._emit("draft_changed", conversation_id, self.store.draft(conversation_id))

    def _restore_refused(self, rejected: Rejected) -> None:
        """A send refused for good: its text goes back into the draft (after what is there).
        ``draft_restored`` tells a composer being typed in to append it, not to drop it."""
        text = (rejected.body or {}).get("body") if rejected.op == "send" else None
        if not isinstance(text, str) or not text.strip():
            return
        cid = rejected.conversation_id
        old = self.store.draft(cid)
        if text in old:
            return
        self.set_draft(cid, f"{old.rstrip()}\n\n{text}" if old.strip() else text)
        self._emit("draft_restored", cid, text)
        if self.relay is not None:
            self.relay.post_draft(cid, restored=text)
