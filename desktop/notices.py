"""The setting "Show a notice when a conversation changes elsewhere" (``remote_toasts``).

A rename, pin, unpin or delete made on another device (or by another person) gets a notice
naming what changed — “Design” was renamed to “Design review” on another device:

* while a Concord window or dialog of the device is active, as a toast in that window, shown by
  the process that owns it (a delete of the conversation open in that window is left to the
  pane's own notice);
* otherwise as a desktop notification, sent by the process that owns the tray icon only, so a
  device notifies once however many processes it runs.

A change made in a window of this device (any process) is the user's own; the *other* visible
windows get a toast saying it was made in another window, and no desktop notification is sent.

Whether a change is this device's own is read from the outbox, shared by the device's processes:
an action of ours is in it (queued or sent) from before its view changes until the server's
confirmation has been applied.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer, Signal

if TYPE_CHECKING:
    from core.model import ConversationView

    from .manager import WindowManager
    from .presence import Presence
    from .tray import Tray

log = logging.getLogger(__name__)
BATCH_MS = 150  # a full sync's burst of changes becomes one summary, not a notice per row
MAX_SEPARATE = 3


@dataclass(frozen=True)
class Notice:
    conversation: str
    kind: str  # "renamed", "pinned", "unpinned", "deleted"
    text: str  # without where: "“Design” was renamed to “Design review”"
    local: bool  # made on this device


TITLES = {
    "renamed": "Conversation renamed",
    "pinned": "Conversation pinned",
    "unpinned": "Conversation unpinned",
    "deleted": "Conversation deleted",
}


def describe(before: tuple[str, bool], after: ConversationView | None) -> list[tuple[str, str]]:
    """(kind, text) for each change from ``before`` (title, pinned) to ``after`` (None: gone)."""
    title, pinned = before
    if after is None:
        return [("deleted", f"“{title}” was deleted")]
    found = []
    if after.title != title:
        found.append(("renamed", f"“{title}” was renamed to “{after.title}”"))
    if after.pinned != pinned:
        kind = "pinned" if after.pinned else "unpinned"
        found.append((kind, f"“{after.title}” was {kind}"))
    return found


class ChangeNotices(QObject):
    """Watches the client's conversations and shows the notices the setting asks for."""

    noticed = Signal(str, str, str)  # how ("toast", "notification", "other windows"), title, text

    def __init__(
        self, manager: WindowManager, presence: Presence | None, tray: Tray | None, prefs: Any
    ) -> None:
        super().__init__()
        self.manager, self.presence, self.tray, self.prefs = manager, presence, tray, prefs
        client = manager.client
        self._known = {v.id: (v.title, v.pinned) for v in client.conversations()}
        self._batch: list[Notice] = []
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(BATCH_MS)
        self._timer.timeout.connect(self.flush)
        self._offs = [
            client.events.conversation_changed.connect(self._changed),
            client.events.conversation_removed.connect(self._removed),
        ]

    def _ours(self, cid: str, ops: set[str], keys: set[str]) -> bool:
        """An action of this device on ``cid`` is in the outbox (op in ``ops``, or a patch of one
        of ``keys``)."""
        for e in self.manager.client.outbox():
            if e.target != cid or e.state == "failed":
                continue
            if e.op in ops or (e.op == "patch" and keys & set(e.body)):
                return True
        return False

    def _changed(self, view: ConversationView) -> None:
        before = self._known.get(view.id)
        self._known[view.id] = (view.title, view.pinned)
        if before is None or not self.prefs.get("remote_toasts", False):
            return
        for kind, text in describe(before, view):
            key = "title" if kind == "renamed" else "pinned"
            self._add(Notice(view.id, kind, text, self._ours(view.id, set(), {key})))

    def _removed(self, cid: str) -> None:
        before = self._known.pop(cid, None)
        if before is None or not self.prefs.get("remote_toasts", False):
            return
        for kind, text in describe(before, None):
            self._add(Notice(cid, kind, text, self._ours(cid, {"delete", "create"}, set())))

    def _add(self, notice: Notice) -> None:
        self._batch.append(notice)
        if not self._timer.isActive():
            self._timer.start()

    def flush(self) -> None:
        batch, self._batch = self._batch, []
        local = [n for n in batch if n.local]
        remote = [n for n in batch if not n.local]
        for n in local[:MAX_SEPARATE]:
            self._in_other_windows(f"{n.text} in another window", n.conversation)
        if len(remote) > MAX_SEPARATE:
            self._remote(Notice("", "changed", f"{len(remote)} conversations changed", local=False))
        else:
            for n in remote:
                self._remote(n)

    def _in_other_windows(self, text: str, cid: str = "") -> None:
        shown = False
        for w in self.manager.windows:
            if w.said_gone(cid):
                continue  # its pane showed the conversation and said so (ui/gone.py)
            if w.isVisible() and not w.isMinimized() and not w.isActiveWindow():
                w.toast(text)
                shown = True
        if shown:
            self.noticed.emit("other windows", "", text)

    def _remote(self, n: Notice) -> None:
        text = f"{n.text} on another device"
        if self.presence is not None and self.presence.local_active():
            # A window or dialog of this process is active: a toast there (a parentless dialog's
            # goes to the last active window).
            active = self.presence.active_window() or self.manager.active_window()
            if active is None:
                return
            if n.kind == "deleted" and (
                active.conversation_id() == n.conversation or active.said_gone(n.conversation)
            ):
                return  # the pane that showed it says so itself
            active.toast(text)
            self.noticed.emit("toast", "", text)
        elif self.presence is not None and self.presence.any_active():
            return  # the process whose window is active shows it
        elif self.tray is not None and self.tray.owner:
            title = TITLES.get(n.kind, "Conversations changed")
            self.tray.notify(title, text)
            self.noticed.emit("notification", title, text)

    def close(self) -> None:
        self._timer.stop()
        for off in self._offs:
            off()
        self._offs = []
