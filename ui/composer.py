"""The message composer: Enter sends, Shift+Enter starts a new line; Up in an empty composer
asks to edit the user's last message, Esc says "cancel" (ui.message_edit uses both)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QPlainTextEdit, QSizePolicy, QWidget


class Composer(QPlainTextEdit):
    """Emits ``submitted(text)`` on Enter when the text is not blank, then clears itself.
    Shift+Enter inserts a newline; Tab moves the focus on (no tab characters). Up while empty
    emits ``editLastRequested``; Esc emits ``cancelled``."""

    submitted = Signal(str)
    editLastRequested = Signal()
    cancelled = Signal()
    MAX_LINES = 6

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTabChangesFocus(True)
        self.setPlaceholderText("Write a message — Enter to send, Shift+Enter for a new line")
        self.setAccessibleName("Message")
        self.setAccessibleDescription("Enter sends the message, Shift+Enter starts a new line")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.document().documentLayout().documentSizeChanged.connect(self._fit)
        self._fit()

    def _fit(self, *_args: object) -> None:
        """Grow with the text from 2 up to 6 lines, then scroll."""
        lines = min(max(round(self.document().size().height()), 2), self.MAX_LINES)
        margins = self.contentsMargins().top() + self.contentsMargins().bottom()
        doc = 2 * self.document().documentMargin()
        self.setFixedHeight(round(lines * self.fontMetrics().lineSpacing() + margins + doc))

    def text(self) -> str:
        return self.toPlainText()

    def submit(self) -> bool:
        """Send what is typed (the Send button's action); False when it is blank."""
        text = self.toPlainText()
        if not text.strip():
            return False
        self.submitted.emit(text)
        self.clear()
        return True

    def restore(self, text: str) -> None:
        """Put back text that could not be sent, unless the user has typed something new."""
        if not self.toPlainText().strip():
            self.setPlainText(text)
            self.moveCursor(self.textCursor().MoveOperation.End)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            mods = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
            if mods & Qt.KeyboardModifier.ShiftModifier:
                self.textCursor().insertText("\n")
                self.ensureCursorVisible()
            elif mods == Qt.KeyboardModifier.NoModifier:
                self.submit()
            else:
                super().keyPressEvent(event)
            event.accept()
            return
        modified = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        if event.key() == Qt.Key.Key_Up and not modified and not self.toPlainText():
            self.editLastRequested.emit()
            event.accept()
            return
        if event.key() == Qt.Key.Key_Escape and not modified:
            self.cancelled.emit()
        super().keyPressEvent(event)
