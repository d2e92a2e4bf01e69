"""Accessibility helpers for what Qt leaves unnamed."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QRectF, Qt
from PySide6.QtGui import QAction, QFocusEvent, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QLineEdit, QWidget

# The object name Qt gives the action behind QLineEdit's clear button (Qt 5 and 6).
CLEAR_ACTION = "_q_qlineeditclearaction"


def name_clear_button(edit: QLineEdit, name: str = "Clear") -> None:
    """Give ``edit``'s clear button (``setClearButtonEnabled``) a name and a tooltip: Qt leaves
    it nameless, so a screen reader says only "button"."""
    for action in edit.findChildren(QAction):
        if action.objectName() == CLEAR_ACTION:
            action.setText(name)
            action.setToolTip(name)


class FocusFrame(QWidget):
    """A focus ring over ``view`` (a list) while it has the keyboard from the keyboard (Tab,
    Shift+Tab, a shortcut), like CSS's ``:focus-visible``: a selected row alone does not say
    whether the list or the composer will get the next key. Drawn on a child that takes no
    mouse events, so the view and its delegate paint as before."""

    KEYBOARD = (
        Qt.FocusReason.TabFocusReason,
        Qt.FocusReason.BacktabFocusReason,
        Qt.FocusReason.ShortcutFocusReason,
    )

    def __init__(self, view: QWidget) -> None:
        super().__init__(view)
        self.view = view
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.hide()
        view.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind == QEvent.Type.FocusIn and isinstance(event, QFocusEvent):
            if event.reason() in self.KEYBOARD:
                self.setGeometry(self.view.rect())
                self.show()
                self.raise_()
            elif event.reason() != Qt.FocusReason.ActiveWindowFocusReason:
                self.hide()
        elif kind == QEvent.Type.FocusOut and isinstance(event, QFocusEvent):
            if event.reason() != Qt.FocusReason.ActiveWindowFocusReason:
                self.hide()
        elif kind == QEvent.Type.Resize:
            self.setGeometry(self.view.rect())
        return False

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pen = QPen(self.palette().color(QPalette.ColorRole.Highlight), 2.0)
        painter.setPen(pen)
        painter.drawRoundedRect(QRectF(self.rect()).adjusted(1, 1, -1, -1), 3, 3)
        painter.end()
