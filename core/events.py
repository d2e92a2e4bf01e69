"""``ClientEvents``: what a :class:`core.client.Client` tells the app, as typed signals.

``client.events.<name>.connect(callback)`` returns a disconnect callable (docs/architecture.md
§5.1). Each signal's type says what its callbacks receive, so mypy checks every connection.
Callbacks run on the client's event loop; one that raises is logged and the others still run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from .signal import Signal

if TYPE_CHECKING:
    from ._policy import SyncStatus
    from .model import Conflict, ConversationView, ErrorInfo, MessageView


__all__ = ["ClientEvents"]


class ClientEvents:
    """The client's signals, one attribute each."""

    def __init__(self) -> None:
        self._unasked: list[Conflict] = []  # conflicts raised before anyone listened
        # A conversation's view was added or changed (its latest view).
        self.conversation_changed: Signal[[ConversationView]] = Signal("conversation_changed")
        # A conversation is gone (its id).
        self.conversation_removed: Signal[[str]] = Signal("conversation_removed")
        # Messages of a conversation arrived or changed state (conversation id, the messages).
        self.messages_added: Signal[[str, list[MessageView]]] = Signal("messages_added")
        # After a resync (a bus gap, a failover): a conversation's latest cached messages as they
        # are now. A shown message within their range that is not among them is gone (it was
        # deleted while this process missed the news); ``messages_added`` told the rest.
        self.messages_reloaded: Signal[[str, list[MessageView]]] = Signal("messages_reloaded")
        # The sync status of this process changed.
        self.status_changed: Signal[[SyncStatus]] = Signal("status_changed")
        # A chain of this device's changes lost to a change made elsewhere: ask the user.
        self.conflict: Signal[[Conflict]] = Signal("conflict", on_connect=self._replay_unasked)
        # An action was refused, the keyring is unusable, a sign-in failed, ...
        self.error: Signal[[ErrorInfo]] = Signal("error")
        # (source, text): SSE events and bus messages, for the sync inspector.
        self.trace: Signal[[str, str]] = Signal("trace")
        # (unsettled count): actions not yet acknowledged and applied.
        self.outbox_changed: Signal[[int]] = Signal("outbox_changed")
        # (conversation id, text): this device's unsent text there changed.
        self.draft_changed: Signal[[str, str]] = Signal("draft_changed")
        # (conversation id, text): a refused send's text was put back into the draft.
        self.draft_restored: Signal[[str, str]] = Signal("draft_restored")
        # Another process of the profile is signing out (docs/architecture.md §2.6): this one
        # has stopped syncing; close every window, then the client (before it leaves the bus
        # it closes the cache, which is then removed).
        self.signing_out: Signal[[]] = Signal("signing_out")

    def ask(self, conflict: Conflict) -> None:
        """Emit ``conflict``; with nobody listening yet (a held chain re-asked while the client
        opens), keep it for the first callback that connects."""
        if self.conflict.connected:
            self.conflict.emit(conflict)
        else:
            self._unasked.append(conflict)

    def _replay_unasked(self, callback: Callable[[Conflict], object]) -> None:
        if self._unasked:
            unasked, self._unasked = self._unasked, []
            loop = asyncio.get_running_loop()
            for conflict in unasked:
                loop.call_soon(callback, conflict)
