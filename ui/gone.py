"""The conversation on screen was deleted elsewhere: what the user is told, and what becomes of
the text they had typed in it.

Who deleted it is not in the change (``conversation.deleted`` carries the id and a reason), but
only a conversation's creator may delete it or remove members (docs/architecture.md §4.3), so
the last known creator names the person: "by Priya" when it was someone else, "on another
device" when it was you, "in another window" when this device's outbox holds the delete. Unsent
text is never dropped: it goes to the clipboard (as in Step 5) and the toast offers "Copy text"
until it is dismissed, in case the clipboard has been used since."""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

from PySide6.QtWidgets import QApplication

COPY_TEXT = "Copy text"


@dataclass(frozen=True)
class Gone:
    """A shown conversation that disappeared: its id and title, the words to show, and the
    unsent text rescued from it ("" when there was none)."""

    conversation_id: str
    title: str
    text: str
    draft: str = ""


def _deleting_here(client: Any, conversation_id: str) -> bool:
    try:
        entries = client.outbox()
    except Exception:
        return False
    return any(e.op == "delete" and e.target == conversation_id for e in entries)


class DeleteWatch:
    """Which conversations this device deleted, noted when they disappear: a delete of ours is
    in the shared outbox at that moment (it removes the view), but may be acknowledged and gone
    from it by the time the UI hears of the removal (a frame later)."""

    KEEP = 256

    def __init__(self, client: Any) -> None:
        self._client = weakref.ref(client)
        self._ours: dict[str, None] = {}  # insertion-ordered, bounded
        events = getattr(client, "events", None)
        if events is not None:
            events.conversation_removed.connect(self._removed)

    def _removed(self, conversation_id: str) -> None:
        client = self._client()
        if client is not None and _deleting_here(client, conversation_id):
            self._ours[conversation_id] = None
            while len(self._ours) > self.KEEP:
                del self._ours[next(iter(self._ours))]

    def ours(self, conversation_id: str) -> bool:
        return conversation_id in self._ours


_watches: weakref.WeakKeyDictionary[Any, DeleteWatch] = weakref.WeakKeyDictionary()


def watch(client: Any) -> DeleteWatch:
    """The client's :class:`DeleteWatch` (one per client; start it before removals matter)."""
    found = _watches.get(client)
    if found is None:
        found = _watches[client] = DeleteWatch(client)
    return found


def deleted_by_this_device(client: Any, conversation_id: str) -> bool:
    """This device (another window or process of it) deleted the conversation."""
    return watch(client).ours(conversation_id) or _deleting_here(client, conversation_id)


def gone_text(title: str, creator: str | None, me: str | None, this_device: bool) -> str:
    """“Title” was deleted in another window / by <creator> / on another device."""
    name = f"“{title}”" if title else "A conversation"
    if this_device:
        return f"{name} was deleted in another window"
    if creator and me and creator != me:
        return f"{name} was deleted by {creator}"
    return f"{name} was deleted on another device"


def gone(client: Any, conversation_id: str, title: str, creator: str | None, draft: str) -> Gone:
    """What to tell the user; a non-blank ``draft`` is put on the clipboard at once."""
    text = gone_text(
        title,
        creator,
        getattr(client, "me", None),
        deleted_by_this_device(client, conversation_id),
    )
    if draft.strip():
        QApplication.clipboard().setText(draft)
        text += " — your unsent text was copied to the clipboard"
    else:
        draft = ""
    return Gone(conversation_id, title, text, draft)
