"""Help → Sync inspector: what the sync machinery of this process is doing, live.

A status panel (role, bus member and epoch, cursor, lag, open streams, outbox) refreshed once a
second, over a bounded log of the client's ``trace`` signal — SSE events (``sse``), messages on
the local bus (``bus``) — and of its status changes. Everything is read through core objects;
the inspector only renders. It stops listening when closed or destroyed.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QCloseEvent, QFontDatabase, QShowEvent
from PySide6.QtWidgets import (
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .status import age_text

FIELDS = (
    ("state", "State"),
    ("role", "Role"),
    ("member", "Bus member"),
    ("epoch", "Bus epoch"),
    ("members", "Processes"),
    ("cursor", "Cursor"),
    ("lag", "Lag"),
    ("streams", "Open streams"),
    ("outbox", "Outbox"),
)


def _seq(event_id: str | None) -> tuple[int, int] | None:
    epoch, sep, seq = (event_id or "").partition(":")
    return (int(epoch), int(seq)) if sep and epoch.isdigit() and seq.isdigit() else None


def lag_text(cursor: str | None, head: str | None, last_event_at: float | None, now: float) -> str:
    """Changes behind the server's head when the status reports one; else the last event's age."""
    have, want = _seq(cursor), _seq(head)
    if have and want and have[0] == want[0]:
        behind = max(0, want[1] - have[1])
        return "up to date" if behind == 0 else f"{behind} change(s) behind"
    if last_event_at is None:
        return "no event from the server yet"
    return f"last event {age_text(now - last_event_at)} ago"


class SyncInspector(QWidget):
    """``SyncInspector(client)``: a top-level window (or a child of ``parent``)."""

    def __init__(
        self,
        client: Any,
        parent: QWidget | None = None,
        *,
        max_lines: int = 2000,
        refresh_ms: int = 1000,
    ) -> None:
        super().__init__(parent)
        self.client = client
        self.setWindowTitle("Sync inspector")
        self.setAccessibleName("Sync inspector")
        form = QFormLayout()
        self.fields: dict[str, QLabel] = {}
        for key, label in FIELDS:
            value = QLabel("—")
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setAccessibleName(label)
            self.fields[key] = value
            form.addRow(f"{label}:", value)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(max_lines)
        self.log.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.log.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.log.setAccessibleName("Sync log")
        self.clear_button = QPushButton("&Clear log")
        self.clear_button.clicked.connect(self.log.clear)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("SSE events, bus messages and status changes (newest last)"))
        bar.addStretch(1)
        bar.addWidget(self.clear_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(bar)
        layout.addWidget(self.log, 1)
        self._pending: deque[str] = deque(maxlen=max_lines)
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.setInterval(100)  # a burst of events is one append, not thousands
        self._flush_timer.timeout.connect(self.flush)
        self.timer = QTimer(self)
        self.timer.setInterval(refresh_ms)
        self.timer.timeout.connect(self.refresh)
        offs: list[Callable[[], None]] = []
        self._offs = offs

        def unsubscribe(*_args: Any) -> None:  # no reference to self: safe after deletion
            while offs:
                offs.pop()()

        self._unsubscribe = unsubscribe
        self.destroyed.connect(unsubscribe)
        self.attach()
        self.resize(640, 520)

    # --- the log ---------------------------------------------------------------------------------

    def append(self, source: str, text: str) -> None:
        t = time.time()
        stamp = time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t * 1000) % 1000:03d}"
        self._pending.append(f"{stamp}  {source:<6} {text}")
        if not self._flush_timer.isActive():
            self._flush_timer.start()

    def flush(self) -> None:
        if self._pending:
            lines = list(self._pending)
            self._pending.clear()
            self.log.appendPlainText("\n".join(lines))

    def lines(self) -> list[str]:
        """The log as shown (after pending lines are flushed)."""
        self.flush()
        return self.log.toPlainText().splitlines()

    def _on_trace(self, source: str, text: str) -> None:
        self.append(source, text)

    def _on_status(self, status: Any) -> None:
        self.append("status", f"{status.state} ({status.role}): {status.detail}")

    # --- the panel -------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, str]:
        """The panel's values, computed from the client now."""
        client, now = self.client, time.time()
        status = client.status
        leadership = client.leadership  # None: a client that is not on a sync bus
        engine = leadership.engine if leadership is not None else None
        bus = leadership.bus if leadership is not None else None
        values = {"state": f"{status.state} — {status.detail}"}
        leading = leadership.leading if leadership is not None else status.role == "leader"
        values["role"] = (
            "leader (this process holds the server connection)"
            if leading
            else "follower (another process syncs for this one)"
        )
        if bus is not None:
            values["member"] = f"{bus.member_id} (leader: {bus.leader_id or '?'})"
            values["epoch"] = str(bus.epoch)
            where = "across processes" if bus.cross_process else "this process only"
            values["members"] = f"{len(bus.members())} on the bus ({where})"
        cursor = client.cursor_id()
        values["cursor"] = cursor or "none yet (before the first full sync)"
        fresh = engine.status if engine is not None else status  # the engine's is the newest
        head = getattr(fresh, "head", None)  # the server's head, should the status carry it
        values["lag"] = lag_text(cursor, head, fresh.last_event_at, now)
        if engine is not None:
            values["streams"] = "1 SSE stream (live)" if engine.live else "0 (not connected)"
        elif leading:
            values["streams"] = "0 (sync is not running in this process)"
        else:
            values["streams"] = "0 here (the leader's process holds the stream)"
        states: dict[str, int] = {}
        for entry in client.outbox():
            states[entry.state] = states.get(entry.state, 0) + 1
        values["outbox"] = ", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "empty"
        return values

    def refresh(self) -> None:
        try:
            values = self.snapshot()
        except Exception as exc:  # the client is closing: show it instead of raising into Qt
            values = {"state": f"unavailable ({type(exc).__name__})"}
        for key, label in self.fields.items():
            text = values.get(key, "—")
            if label.text() != text:
                label.setText(text)

    # --- closing ---------------------------------------------------------------------------------

    def attach(self) -> None:
        """Listen to the client and refresh every second (idempotent; done at creation)."""
        if not self._offs:
            self._offs.append(self.client.events.trace.connect(self._on_trace))
            self._offs.append(self.client.events.status_changed.connect(self._on_status))
            self._on_status(self.client.status)
        self.refresh()
        self.timer.start()

    def detach(self) -> None:
        """Stop listening to the client and stop refreshing (idempotent)."""
        self.timer.stop()
        self._flush_timer.stop()
        self._unsubscribe()

    def showEvent(self, event: QShowEvent) -> None:
        self.attach()  # shown again after a close without deletion
        super().showEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.detach()
        super().closeEvent(event)
