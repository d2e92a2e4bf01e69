"""Non-modal toasts stacked in a window's bottom-right corner.

``ToastArea(anchor)`` is an overlay over ``anchor`` (usually a window's central widget) that
covers only the stack itself, so the rest of the window stays clickable. It is a child of
``anchor`` — or of the anchor's parent when the anchor is a ``QSplitter``, which would otherwise
adopt it as one more pane. It follows the anchor's geometry through an event filter, never takes
keyboard focus, keeps at most :attr:`ToastArea.max_visible` toasts (the oldest goes first) and
announces each toast to screen readers. :meth:`ToastArea.keep_clear_of` keeps the stack above a
widget (the composer: a toast never covers what the user is typing). A toast may carry one action
button ("Copy text"), reachable with Tab.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QAccessible, QAccessibleAnnouncementEvent, QEnterEvent, QMouseEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

Action = tuple[str, Callable[[], object]]  # a button's text, and what it does

MARGIN = 12
MAX_WIDTH = 360
STYLE = """
QFrame#toast { border-radius: 6px; background: rgba(40, 40, 40, 235); }
QFrame#toast[kind="error"] { background: rgba(179, 38, 30, 240); }
QFrame#toast QLabel { color: white; background: transparent; }
QFrame#toast QPushButton { color: white; background: rgba(255, 255, 255, 40);
    border: 1px solid rgba(255, 255, 255, 160); border-radius: 4px; padding: 2px 10px; }
QFrame#toast QPushButton:focus { border: 2px solid white; }
"""


class Toast(QFrame):
    """One toast; a click dismisses it, the pointer over it pauses its timeout."""

    dismissed = Signal(object)  # the toast

    def __init__(
        self, text: str, kind: str, timeout_ms: int, parent: QWidget, action: Action | None = None
    ) -> None:
        super().__init__(parent)
        self.kind = kind
        self.setObjectName("toast")
        self.setProperty("kind", kind)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.label = QLabel(text, self)
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        layout.addWidget(self.label, 1)
        self.button: QPushButton | None = None
        if action is not None:
            label, run = action
            self.button = QPushButton(label, self)
            self.button.setAccessibleName(label)
            self.button.setFocusPolicy(Qt.FocusPolicy.TabFocus)  # never taken, reachable by Tab
            self.button.setCursor(Qt.CursorShape.PointingHandCursor)
            self.button.clicked.connect(lambda _checked=False: self._act(run))
            layout.addWidget(self.button, 0, Qt.AlignmentFlag.AlignVCenter)
        self.setAccessibleName("Error" if kind == "error" else "Notice")
        self.setAccessibleDescription(text)
        self.setToolTip("Click to dismiss")
        self.timeout_ms = timeout_ms
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self.dismiss)
        if timeout_ms > 0:
            self.timer.start(timeout_ms)
        self._gone = False

    def text(self) -> str:
        return self.label.text()

    def _act(self, run: Callable[[], object]) -> None:
        run()
        self.dismiss()

    def dismiss(self) -> None:
        if self._gone:
            return
        self._gone = True
        self.timer.stop()
        self.hide()
        self.dismissed.emit(self)
        self.deleteLater()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.dismiss()
            return
        super().mouseReleaseEvent(event)

    def enterEvent(self, event: QEnterEvent) -> None:
        self.timer.stop()
        super().enterEvent(event)

    def leaveEvent(self, event: QEvent) -> None:
        if self.timeout_ms > 0 and not self._gone:
            self.timer.start(max(1500, self.timeout_ms // 2))
        super().leaveEvent(event)


class ToastArea(QWidget):
    """The stack: ``show_toast(text, kind="info"|"error", timeout_ms=4000)``, where
    ``timeout_ms=0`` keeps a toast until it is clicked."""

    max_visible = 4
    _clear_of: QWidget | None = None

    def __init__(self, anchor: QWidget) -> None:
        host = anchor.parentWidget() if isinstance(anchor, QSplitter) else None
        super().__init__(host or anchor)
        self.anchor = anchor
        self.setObjectName("toastArea")
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_TranslucentBackground)
        self.setStyleSheet(STYLE)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(6)
        self._toasts: list[Toast] = []
        anchor.installEventFilter(self)
        self.hide()

    def toasts(self) -> list[Toast]:
        """The toasts shown, oldest first."""
        return list(self._toasts)

    def texts(self) -> list[str]:
        return [t.text() for t in self._toasts]

    def keep_clear_of(self, widget: QWidget) -> None:
        """Keep the stack above ``widget`` wherever it is (and however tall it grows)."""
        self._clear_of = widget
        widget.installEventFilter(self)

    def show_toast(
        self,
        text: str,
        kind: str = "info",
        timeout_ms: int = 4000,
        action: Action | None = None,
    ) -> Toast:
        toast = Toast(text, "error" if kind == "error" else "info", timeout_ms, self, action)
        toast.dismissed.connect(self._forget)
        self._toasts.append(toast)
        self._layout.addWidget(toast)
        while len(self._toasts) > self.max_visible:
            self._toasts[0].dismiss()
        self._announce(toast)
        self.show()
        toast.show()  # added to a visible area, it would only show later: size it now
        self.reposition()
        self.raise_()
        return toast

    def clear(self) -> None:
        for toast in list(self._toasts):
            toast.dismiss()

    def _forget(self, toast: Toast) -> None:
        if toast in self._toasts:
            self._toasts.remove(toast)
            self._layout.removeWidget(toast)
        if self._toasts:
            self.reposition()
        else:
            self.hide()

    def _announce(self, toast: Toast) -> None:
        if not QAccessible.isActive():
            return
        event = QAccessibleAnnouncementEvent(self, toast.text())
        if toast.kind == "error":
            event.setPoliteness(QAccessible.AnnouncementPoliteness.Assertive)
        QAccessible.updateAccessibility(event)

    def reposition(self) -> None:
        """Fit the stack and put it in the anchor's bottom-right corner."""
        host, anchor = self.parentWidget(), self.anchor
        if host is None:
            return
        origin = anchor.mapTo(host, QPoint(0, 0)) if anchor is not host else QPoint(0, 0)
        width = max(80, min(MAX_WIDTH, anchor.width() - 2 * MARGIN))
        self._layout.activate()
        if self._layout.hasHeightForWidth():
            height = self._layout.heightForWidth(width)
        else:
            height = self._layout.sizeHint().height()
        bottom = origin.y() + anchor.height() - MARGIN
        clear = self._clear_of
        if clear is not None and clear.isVisible() and host.isAncestorOf(clear):
            bottom = min(bottom, clear.mapTo(host, QPoint(0, 0)).y() - MARGIN // 2)
        height = min(height, max(0, bottom - origin.y() - MARGIN))
        x = origin.x() + anchor.width() - width - MARGIN
        self.setGeometry(x, bottom - height, width, height)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched in (self.anchor, self._clear_of) and event.type() in (
            QEvent.Type.Resize,
            QEvent.Type.Move,
            QEvent.Type.Show,
            QEvent.Type.Hide,
        ):
            if self._toasts:
                self.reposition()
                self.raise_()
        return False
