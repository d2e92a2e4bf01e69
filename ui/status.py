"""The sync status shown in every window's status bar (docs/architecture.md §5): a glyph and words.

``status_text(status, now, since)`` and ``status_tooltip(...)`` are pure functions of a core
``SyncStatus`` and the wall clock (``time.time()``, the clock of ``last_event_at``); ``since`` is
when the status arrived, from which a reconnect delay counts down. :class:`StatusIndicator`
calls them once a second while anything on it depends on the time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QMouseEvent, QPainter, QPaintEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QWidget

from .icons import paint_state_glyph


class StatusLike(Protocol):
    """What is read of core's ``SyncStatus`` (``core.engine`` is not imported: it would pull
    ``httpx`` and ``sqlite3`` into ``ui``)."""

    @property
    def state(self) -> str: ...
    @property
    def detail(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def next_retry_s(self) -> float | None: ...
    @property
    def cursor(self) -> str | None: ...
    @property
    def last_event_at(self) -> float | None: ...
    @property
    def last_error(self) -> str | None: ...
    @property
    def target(self) -> str: ...
    @property
    def local_server(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class _Initial:
    """Shown until the first status arrives."""

    state: str = "connecting"
    detail: str = "Connecting"
    role: str = "leader"
    next_retry_s: float | None = None
    cursor: str | None = None
    last_event_at: float | None = None
    last_error: str | None = None
    target: str = ""
    local_server: bool = False


FIXED_TEXT = {
    "live": "Live",
    "connecting": "Connecting…",
    "offline": "Offline",
    "sign_in_required": "Sign-in required",
}


def _seconds(value: float) -> int:
    return max(0, round(value))


def status_text(status: StatusLike, now: float, since: float | None = None) -> str:
    """The words for ``status`` at wall time ``now``; the status arrived at ``since``
    (default ``now``: a reconnect shows its whole delay)."""
    state = status.state
    left = 0  # whole seconds until the next attempt (0: now, or not known)
    if status.next_retry_s is not None:
        elapsed = max(0.0, now - (now if since is None else since))
        left = max(0, math.ceil(round(status.next_retry_s - elapsed, 3)))  # 5.0000001 s shows 5
    if state == "reconnecting":
        return f"Reconnecting in {left} s" if left else "Reconnecting…"
    if state == "unreachable":
        retry = f"retrying in {left} s" if left else "retrying now"
        if status.local_server:
            return f"Local server restarting · {retry}"
        return f"Offline — can't reach {status.target or 'the server'} · {retry}"
    if state == "polling":
        if status.next_retry_s is None:
            return "Polling"
        return f"Polling every {max(1, _seconds(status.next_retry_s))} s"
    return FIXED_TEXT.get(state, status.detail or state)


def age_text(seconds: float) -> str:
    """``3 s``, ``2 min``, ``1 h``, ``2 d`` (never negative)."""
    s = _seconds(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h"
    return f"{s // 86400} d"


def status_tooltip(status: StatusLike, now: float, since: float | None = None) -> str:
    """Role, state, cursor and the age of the last event, one per line."""
    text = status_text(status, now, since)
    follower = status.role == "follower"
    lines = [f"{text} (via another window)" if follower else text]
    first_word = (text.split() or [""])[0].rstrip("…")
    if status.detail and not status.detail.startswith(first_word):
        lines.append(status.detail)  # "Waiting for the leader", "Sync off", ...
    lines.append(
        "Role: follower (another Concord process holds the server connection)"
        if follower
        else "Role: leader (this process holds the server connection)"
    )
    if status.last_error and status.state != "live":
        lines.append(f"Last error: {status.last_error}")
    lines.append(f"Cursor: {status.cursor or 'none yet'}")
    if status.last_event_at is None:
        lines.append("No event from the server yet")
    else:
        lines.append(f"Last event {age_text(now - status.last_event_at)} ago")
    return "\n".join(lines)


def _ticks(status: StatusLike) -> bool:
    """Whether the words or the tooltip change with time."""
    counting = status.state in ("reconnecting", "unreachable") and status.next_retry_s is not None
    return counting or status.last_event_at is not None


class _Glyph(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = "connecting"
        self.setFixedSize(QSize(12, 12))
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        paint_state_glyph(painter, self.rect().toRectF().adjusted(1, 1, -1, -1), self.state)
        painter.end()


class StatusIndicator(QWidget):
    """A colored, shaped glyph and the state in words; tooltip with role, cursor, event age.

    Connect ``bridge.statusChanged`` to :meth:`set_status`. ``clicked`` is emitted on a click
    (e.g. to sign in when sign-in is required, or to open the sync inspector).
    """

    clicked = Signal()

    def __init__(
        self, parent: QWidget | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(parent)
        self._clock = clock
        self._status: StatusLike = _Initial()
        self._since = clock()
        self.glyph = _Glyph(self)
        self.label = QLabel(self)
        self.label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.setSpacing(5)
        layout.addWidget(self.glyph)
        layout.addWidget(self.label)
        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)  # a coarse one may fire 5% early
        self.timer.setInterval(1000)
        self.timer.timeout.connect(self.refresh)
        self.setAccessibleName("Sync status")
        self.refresh()

    def status(self) -> StatusLike:
        return self._status

    def text(self) -> str:
        return self.label.text()

    def set_status(self, status: Any) -> None:
        """Show ``status`` (a core ``SyncStatus``); a reconnect delay counts down from now."""
        self._status = status
        self._since = self._clock()
        self.refresh()
        if _ticks(status):
            self.timer.start()  # restarts: ticks fall on whole seconds since the status came
        else:
            self.timer.stop()

    def refresh(self) -> None:
        now = self._clock()
        status = self._status
        text = status_text(status, now, self._since)
        tip = status_tooltip(status, now, self._since)
        if self.label.text() != text:
            self.label.setText(text)
        if self.glyph.state != status.state:
            self.glyph.state = status.state
            self.glyph.update()
        self.setToolTip(tip)
        self.setAccessibleName(f"Sync status: {text}")
        self.setAccessibleDescription(tip.replace("\n", ". "))

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.rect().contains(
            event.position().toPoint()
        ):
            self.clicked.emit()
        super().mouseReleaseEvent(event)
