"""Ctrl+F: find in the open conversation, floating over the top of its messages.

Each keystroke searches the conversation's cached messages (``Client.search`` with its id:
whole words, the last one as a prefix, case and diacritics ignored) and shows the newest match.
Enter or F3 goes to the next older match, Shift+Enter or Shift+F3 to the next newer one (both
wrap); "3 of 17" says where you are. The match is centred and selected; older pages are loaded
when it is further up. Esc closes the bar and gives the keyboard back to the messages.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QAction, QKeyEvent, QKeySequence
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QLineEdit, QToolButton
from shiboken6 import isValid

from core.search_results import MessageHit
from ui.a11y import name_clear_button
from ui.jump import reveal
from ui.tasks import spawn

MAX_MATCHES = 1000


class FindBar(QFrame):
    """``FindBar(pane)``: attaches to a ``ConversationPane``; ``open()`` shows it (Ctrl+F)."""

    moved = Signal(int)  # the index of the match now shown

    def __init__(self, pane: Any) -> None:
        super().__init__(pane.messages)
        self.pane = pane
        self.setObjectName("findBar")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        self.setAccessibleName("Find in conversation")
        self.edit = QLineEdit(self)
        self.edit.setPlaceholderText("Find in conversation")
        self.edit.setAccessibleName("Find in conversation")
        self.edit.setClearButtonEnabled(True)
        name_clear_button(self.edit, "Clear search")
        self.count = QLabel(self)
        self.count.setAccessibleName("Matches")
        self.older = self._button("▲", "Older match (Enter, F3)", lambda: self.step(1))
        self.newer = self._button("▼", "Newer match (Shift+Enter, Shift+F3)", lambda: self.step(-1))
        self.close_button = self._button("✕", "Close find bar (Esc)", self.close_bar)
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 4, 6, 4)
        for w in (self.edit, self.count, self.older, self.newer, self.close_button):
            row.addWidget(w)
        self.hits: list[MessageHit] = []
        self.index = -1
        self.edit.textChanged.connect(self._typed)
        self.edit.installEventFilter(self)
        pane.messages.installEventFilter(self)
        pane.conversationShown.connect(self._conversation_shown)
        for keys, delta in ((QKeySequence(Qt.Key.Key_F3), 1), (QKeySequence("Shift+F3"), -1)):
            action = QAction(pane)  # the pane's own: it outlives the bar, never the reverse
            action.setShortcut(keys)
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            action.triggered.connect(
                lambda _=False, d=delta: self.step(d) if self.isVisible() else None
            )
            pane.addAction(action)
        self.hide()

    def _button(self, text: str, name: str, slot: Any) -> QToolButton:
        button = QToolButton(self)
        button.setText(text)
        button.setToolTip(name)
        button.setAccessibleName(name)
        button.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        button.clicked.connect(lambda _checked=False: slot())
        return button

    # --- public ----------------------------------------------------------------------------------

    def open(self) -> None:
        """Show the bar (in a pane showing a conversation) with its text selected."""
        if self.pane.conversation_id() is None:
            return
        self._place()
        self.show()
        self.raise_()
        self.edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.edit.selectAll()
        self._typed(self.edit.text())

    def close_bar(self) -> None:
        self.hide()
        self.hits, self.index = [], -1
        self.pane.messages.setFocus(Qt.FocusReason.OtherFocusReason)

    def step(self, delta: int) -> None:
        """Go to the next older (``1``) or newer (``-1``) match, wrapping around."""
        if not self.hits:
            return
        self._go((self.index + delta) % len(self.hits))

    def count_text(self) -> str:
        return self.count.text()

    # --- inside ----------------------------------------------------------------------------------

    def _typed(self, text: str) -> None:
        cid = self.pane.conversation_id()
        if cid is None or not text.strip():
            self.hits, self.index = [], -1
            self.count.setText("")
            return
        found = self.pane.client.search(text, MAX_MATCHES, conversation_id=cid)
        self.hits = found.messages
        if not self.hits:
            self.index = -1
            self.count.setText("No matches")
            return
        self._go(0)

    def _go(self, index: int) -> None:
        self.index = index
        more = "+" if len(self.hits) >= MAX_MATCHES else ""
        self.count.setText(f"{index + 1} of {len(self.hits)}{more}")
        m = self.hits[index].message
        spawn(reveal(self.pane, m.conversation_id, m.seq or 0, m.id))
        self.moved.emit(index)

    def _conversation_shown(self, _cid: str) -> None:
        if isValid(self) and self.isVisible():
            self._typed(self.edit.text())

    def _place(self) -> None:
        view = self.pane.messages
        size = self.sizeHint()
        width = min(max(size.width(), 360), view.width() - 16)
        self.setGeometry(view.width() - width - 8, 4, width, size.height())

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.pane.messages and event.type() == QEvent.Type.Resize:
            if self.isVisible():
                self._place()
        elif watched is self.edit and isinstance(event, QKeyEvent):
            if event.type() == QEvent.Type.KeyPress:
                key, shift = (
                    event.key(),
                    bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier),
                )
                if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_F3):
                    self.step(-1 if shift else 1)
                    return True
                if key == Qt.Key.Key_Escape:
                    self.close_bar()
                    return True
        return super().eventFilter(watched, event)
