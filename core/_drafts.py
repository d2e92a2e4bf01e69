"""Drafts: one per conversation in the shared cache, so every process of the device sees it and
it survives a crash; a change is announced locally (``draft_changed``) and over the bus. A send
refused for good puts its text back (``draft_restored``: a composer being typed in appends it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import protocol as p
from .sync_messages import DraftChanged

if TYPE_CHECKING:
    from .events import ClientEvents
    from .outbox import Rejected
    from .read_model import ReadModel
    from .store import LocalStore
    from .sync_messages import SyncChannel


class Drafts:
    """This device's drafts (what :class:`core.client.Client`'s draft methods do)."""

    def __init__(
        self, store: LocalStore, model: ReadModel, events: ClientEvents, channel: SyncChannel
    ) -> None:
        self.store = store
        self.model = model
        self.events = events
        self.channel = channel

    def draft(self, conversation_id: str) -> str:
        """This device's unsent text for a conversation ("" when there is none)."""
        return self.store.draft(conversation_id)

    def drafts(self) -> dict[str, str]:
        """Every non-empty draft, by conversation id (some may be of conversations now gone)."""
        return self.store.drafts()

    def set_draft(self, conversation_id: str, text: str) -> None:
        """Store a draft (empty text clears it) and tell every window of this device."""
        text = p.well_formed(text)
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
        self.events.draft_changed.emit(conversation_id, text)
        self.channel.post(DraftChanged(cid=conversation_id))

    def resync(self) -> None:
        """After a bus gap: every draft as the cache has it (listeners ignore what they show)."""
        if not self.events.draft_changed.connected:
            return
        drafts = self.store.drafts()
        for cid in set(self.model.conversation_ids()) | set(drafts):
            self.events.draft_changed.emit(cid, drafts.get(cid, ""))

    def changed_elsewhere(self, conversation_id: str, restored: str | None = None) -> None:
        """Another process changed a draft: the text is read from the shared cache;
        ``restored``: a refused send's text it put back."""
        self.events.draft_changed.emit(conversation_id, self.store.draft(conversation_id))
        if restored is not None:
            self.events.draft_restored.emit(conversation_id, restored)

    def restore_refused(self, rejected: Rejected) -> None:
        """A send refused for good: its text goes back into the draft (after what is there).
        ``draft_restored`` tells a composer being typed in to append it, not to drop it."""
        kept = ("send", "edit_message")  # what the user typed: a message, or an edit of one
        text = (rejected.body or {}).get("body") if rejected.op in kept else None
        if not isinstance(text, str) or not text.strip():
            return
        cid = rejected.conversation_id
        old = self.store.draft(cid)
        if text in old:
            return
        self.set_draft(cid, f"{old.rstrip()}\n\n{text}" if old.strip() else text)
        self.events.draft_restored.emit(cid, text)
        self.channel.post(DraftChanged(cid=cid, restored=text))
