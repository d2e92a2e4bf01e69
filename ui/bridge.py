"""Turns the core ``Client``'s signals (``client.events``) into Qt signals, coalesced to one
delivery per frame.

A burst of remote changes (say 1,000 in a few milliseconds) becomes at most one
``conversationsChanged`` per ~16 ms carrying the latest view of each touched conversation, so
models update each row once and views repaint once per frame, not once per event.
"""

from __future__ import annotations

from typing import Protocol

from PySide6.QtCore import QObject, QTimer, Signal

from core.events import ClientEvents
from core.model import ConversationView, MessageView

FRAME_MS = 16


class EventSource(Protocol):
    """What the bridge needs of a ``core.Client``: its signals."""

    @property
    def events(self) -> ClientEvents: ...


class ClientBridge(QObject):
    conversationsChanged = Signal(list, list)  # views changed or added, ids removed
    messagesAdded = Signal(str, list)  # conversation id, [MessageView]
    messagesReloaded = Signal(str, list)  # conversation id, its latest messages after a resync
    statusChanged = Signal(object)  # core SyncStatus
    conflict = Signal(object)  # core Conflict
    error = Signal(object)  # core ErrorInfo
    draftRestored = Signal(str, str)  # conversation id, the refused send's text put back
    draftChanged = Signal(str, str)  # conversation id, text (at once: a draft is never batched)

    def __init__(self, client: EventSource, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.client = client
        self._changed: dict[str, ConversationView] = {}
        self._removed: set[str] = set()
        self._messages: dict[str, dict[str, MessageView]] = {}
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(FRAME_MS)
        self._timer.timeout.connect(self.flush)
        events = client.events
        self._offs = [
            events.conversation_changed.connect(self._on_changed),
            events.conversation_removed.connect(self._on_removed),
            events.messages_added.connect(self._on_messages),
            events.messages_reloaded.connect(self._on_reloaded),
            events.status_changed.connect(self.statusChanged.emit),
            events.conflict.connect(self.conflict.emit),
            events.error.connect(self.error.emit),
            events.draft_changed.connect(self.draftChanged.emit),
            events.draft_restored.connect(self.draftRestored.emit),
        ]
        self.deliveries = 0  # how many coalesced deliveries were made (for the benchmark)

    def _schedule(self) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def _on_changed(self, view: ConversationView) -> None:
        self._removed.discard(view.id)
        self._changed[view.id] = view
        self._schedule()

    def _on_removed(self, cid: str) -> None:
        self._changed.pop(cid, None)
        self._messages.pop(cid, None)
        self._removed.add(cid)
        self._schedule()

    def _on_messages(self, cid: str, messages: list[MessageView]) -> None:
        bucket = self._messages.setdefault(cid, {})
        for m in messages:
            bucket[m.id] = m
        self._schedule()

    def _on_reloaded(self, cid: str, messages: list[MessageView]) -> None:
        self.flush()  # what was added before goes first: the reload then says what is gone
        self.messagesReloaded.emit(cid, messages)

    def flush(self) -> None:
        self._timer.stop()
        changed, removed, messages = (
            list(self._changed.values()),
            list(self._removed),
            self._messages,
        )
        self._changed, self._removed, self._messages = {}, set(), {}
        if changed or removed:
            self.deliveries += 1
            self.conversationsChanged.emit(changed, removed)
        for cid, by_id in messages.items():
            self.messagesAdded.emit(cid, list(by_id.values()))

    def close(self) -> None:
        for off in self._offs:
            off()
        self._offs = []
        self._timer.stop()
