"""Editing and deleting the user's own messages in a conversation pane, as in Telegram:

* a context menu on a message (right click, or the Menu key / Shift+F10 on the selected one):
  Edit and Delete… on the user's own messages, Copy text on every message;
* Up arrow in an empty composer edits the user's newest message; Delete on a selected own
  message deletes it;
* editing shows an "Editing message" bar with the text in place of the composer: Enter saves,
  Shift+Enter starts a new line, Esc (or ✕) cancels and gives the composer back, its draft
  untouched;
* Delete asks first; the message then disappears at once, in every window and on every device.

It calls the core ``Client`` (``edit_message``/``delete_message``): the change is optimistic and
goes through the outbox; a refusal comes back as an error that the pane shows (and an edit's
text goes back into the draft).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QModelIndex, QObject, QPoint, Qt
from PySide6.QtGui import QAction, QKeyEvent
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMenu,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ui.composer import Composer
from ui.models import MessageListModel
from ui.tasks import error_text, spawn

if TYPE_CHECKING:
    from core.model import MessageView

ConfirmMessageDelete = Callable[[QWidget], bool]


def confirm_message_delete(parent: QWidget) -> bool:
    """Ask before deleting a message (No is the default)."""
    yes, no = QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No
    answer = QMessageBox.question(
        parent,
        "Delete message",
        "Delete this message for everyone? It disappears from every window and device; this "
        "cannot be undone.",
        yes | no,
        no,
    )
    return answer == yes


class EditBar(QFrame):
    """The "Editing message" bar and its text box, shown in place of the composer."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("messageEditBar")
        self.setAccessibleName("Editing message")
        self.title = QLabel("Editing message")
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.quote = QLabel()  # the text being edited, on one line
        self.quote.setAccessibleName("Original message")
        self.quote.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.cancel_button = QToolButton()
        self.cancel_button.setText("✕")
        self.cancel_button.setToolTip("Cancel editing (Esc)")
        self.cancel_button.setAccessibleName("Cancel editing")
        self.error = QLabel()
        self.error.setObjectName("messageEditError")
        self.error.setAccessibleName("Error")
        self.error.setWordWrap(True)
        self.error.hide()
        self.editor = Composer()
        self.editor.setObjectName("messageEditor")
        self.editor.setAccessibleName("Edit message")
        self.editor.setAccessibleDescription("Enter saves the message, Escape cancels")
        self.editor.setPlaceholderText("Edit the message — Enter to save, Esc to cancel")
        self.save_button = QPushButton("Save")
        self.save_button.setAccessibleName("Save edited message")
        self.save_button.clicked.connect(self.editor.submit)
        head = QHBoxLayout()
        head.addWidget(self.title)
        head.addWidget(self.quote, 1)
        head.addWidget(self.cancel_button)
        row = QHBoxLayout()
        row.addWidget(self.editor, 1)
        row.addWidget(self.save_button, 0, Qt.AlignmentFlag.AlignBottom)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(head)
        layout.addWidget(self.error)
        layout.addLayout(row)

    def show_quote(self, text: str) -> None:
        line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
        metrics = self.quote.fontMetrics()
        width = max(80, self.quote.width() or 300)
        self.quote.setText(metrics.elidedText(line, Qt.TextElideMode.ElideRight, width))
        self.quote.setToolTip(text[:500])


class MessageActions(QObject):
    """Edit and delete for ``pane`` (a ``ConversationPane``): its ``client``, ``bridge``,
    ``messages`` (the list view), ``composer`` and ``send_button``. ``confirm`` asks before a
    delete (tests replace it). ``menu`` is the context menu shown last (None before any)."""

    def __init__(self, pane: Any, confirm: ConfirmMessageDelete | None = None) -> None:
        super().__init__(pane)
        self.pane = pane
        self.client = pane.client
        self.confirm: ConfirmMessageDelete = confirm or confirm_message_delete
        self.menu: QMenu | None = None
        self._editing: tuple[str, str, str] | None = None  # conversation, message, its text
        self.bar = EditBar(pane)
        self.bar.hide()
        layout = pane.layout()
        layout.insertWidget(layout.count() - 1, self.bar)  # just above the composer
        # Tab: messages → the edit box, Save, ✕ (while shown) → the composer.
        QWidget.setTabOrder(pane.messages, self.bar.editor)
        QWidget.setTabOrder(self.bar.editor, self.bar.save_button)
        QWidget.setTabOrder(self.bar.save_button, self.bar.cancel_button)
        QWidget.setTabOrder(self.bar.cancel_button, pane.composer)
        self.bar.editor.submitted.connect(self.save)
        self.bar.editor.cancelled.connect(self.cancel)
        self.bar.cancel_button.clicked.connect(self.cancel)
        view = pane.messages
        view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        view.customContextMenuRequested.connect(self._menu_at)
        view.installEventFilter(self)
        pane.composer.editLastRequested.connect(self.edit_last)
        pane.bridge.messagesAdded.connect(self._on_messages)
        pane.conversationShown.connect(self._on_shown)
        pane.conversationLeft.connect(lambda _cid: self.cancel())
        pane.conversationDeleted.connect(lambda _cid: self.cancel())

    # --- public API ------------------------------------------------------------------------------

    def editing(self) -> str | None:
        """The id of the message being edited, if any."""
        return self._editing[1] if self._editing else None

    def mine(self, m: MessageView | None) -> bool:
        return m is not None and not m.deleted and m.author == getattr(self.client, "me", None)

    def edit(self, message_id: str, text: str | None = None) -> bool:
        """Start editing one of the user's messages (``text``: what to show instead of its
        current text, after a refusal); False when it is not theirs or not there."""
        cid = self.pane.conversation_id()
        m = self.client.message(cid, message_id) if cid else None
        if cid is None or m is None or not self.mine(m):
            return False
        self._editing = (cid, message_id, m.body)
        self.pane.composer.hide()
        self.pane.send_button.hide()
        self.bar.error.hide()
        self.bar.show()
        self.bar.show_quote(m.body)
        self.bar.editor.setPlainText(m.body if text is None else text)
        self.bar.editor.moveCursor(self.bar.editor.textCursor().MoveOperation.End)
        self.bar.editor.setFocus(Qt.FocusReason.OtherFocusReason)
        self._select(message_id)
        return True

    def edit_last(self) -> bool:
        """Edit the user's newest message in the conversation shown (the Up arrow)."""
        model = self.pane.messages.message_model()
        for row in range(model.rowCount() - 1, -1, -1):
            m = model.message(row)
            if self.mine(m):
                return self.edit(m.id)
        return False

    def save(self, text: str) -> None:
        """Enter in the editor: send the new text (nothing when it did not change)."""
        if self._editing is None:
            return
        cid, mid, before = self._editing
        self._end()
        if text == before or cid != self.pane.conversation_id():
            return

        def failed(exc: BaseException) -> None:  # refused at once (blank, too long): keep it
            if cid == self.pane.conversation_id() and self.edit(mid, text):
                self.bar.error.setText(error_text(exc))
                self.bar.error.show()

        spawn(self.client.edit_message(cid, mid, text), failed)

    def cancel(self) -> None:
        """Esc: stop editing; the composer comes back as it was."""
        if self._editing is not None:
            self._end()

    def delete(self, message_id: str) -> bool:
        """Delete one of the user's messages after asking; True when it was asked to go."""
        cid = self.pane.conversation_id()
        m = self.client.message(cid, message_id) if cid else None
        if cid is None or not self.mine(m) or not self.confirm(self.pane):
            return False
        if self.editing() == message_id:
            self.cancel()
        spawn(self.client.delete_message(cid, message_id), self._show_error)
        return True

    def menu_for(self, index: QModelIndex) -> QMenu | None:
        """The context menu of the message at ``index`` (None for no message)."""
        m = index.data(MessageListModel.ViewRole) if index.isValid() else None
        if m is None or m.deleted:
            return None
        menu = QMenu(self.pane.messages)
        menu.setAccessibleName("Message actions")
        if self.mine(m):
            edit = QAction("Edit", menu)
            edit.triggered.connect(lambda: self.edit(m.id))
            delete = QAction("Delete…", menu)
            delete.triggered.connect(lambda: self.delete(m.id))
            menu.addAction(edit)
            menu.addAction(delete)
            menu.addSeparator()
        copy = QAction("Copy text", menu)
        copy.triggered.connect(lambda: QApplication.clipboard().setText(m.body))
        menu.addAction(copy)
        return menu

    # --- helpers ---------------------------------------------------------------------------------

    def _menu_at(self, pos: QPoint) -> None:
        view = self.pane.messages
        index = view.indexAt(pos)
        if index.isValid():
            view.setCurrentIndex(index)
        self._popup(index, view.viewport().mapToGlobal(pos))

    def _popup(self, index: QModelIndex, at: QPoint) -> None:
        menu = self.menu_for(index)
        if menu is None:
            return
        if self.menu is not None:
            self.menu.deleteLater()
        self.menu = menu
        menu.popup(at)  # not exec(): the event loop (and the sync) keeps running

    def _menu_for_current(self) -> None:
        view = self.pane.messages
        index = view.currentIndex()
        if not index.isValid():
            return
        rect = view.visualRect(index)
        self._popup(index, view.viewport().mapToGlobal(rect.center()))

    def _selected(self) -> MessageView | None:
        index = self.pane.messages.currentIndex()
        return index.data(MessageListModel.ViewRole) if index.isValid() else None

    def _select(self, message_id: str) -> None:
        view = self.pane.messages
        model = view.message_model()
        for row in range(model.rowCount() - 1, -1, -1):
            if model.message(row).id == message_id:
                view.setCurrentIndex(model.index(row))
                view.scrollTo(model.index(row))
                return

    def _end(self) -> None:
        self._editing = None
        focus = QApplication.focusWidget()
        refocus = focus is not None and self.bar.isAncestorOf(focus)
        self.bar.hide()
        self.bar.editor.clear()
        self.pane.composer.show()
        self.pane.send_button.show()
        if refocus:
            self.pane.composer.setFocus(Qt.FocusReason.OtherFocusReason)

    def _show_error(self, exc: BaseException) -> None:
        self.pane.errorText.emit(error_text(exc))

    def _on_messages(self, cid: str, messages: list[MessageView]) -> None:
        if self._editing is None or cid != self._editing[0]:
            return
        for m in messages:
            if m.id == self._editing[1] and m.deleted:
                self.cancel()  # deleted meanwhile (another window or device)
                return

    def _on_shown(self, cid: str) -> None:
        if self._editing is not None and self._editing[0] != cid:
            self.cancel()

    # --- keys on the message list ----------------------------------------------------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.pane.messages and event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            key, mods = event.key(), event.modifiers()
            if key == Qt.Key.Key_Menu or (
                key == Qt.Key.Key_F10 and mods == Qt.KeyboardModifier.ShiftModifier
            ):
                self._menu_for_current()
                return True
            if key == Qt.Key.Key_Delete and mods == Qt.KeyboardModifier.NoModifier:
                m = self._selected()
                if m is not None and self.mine(m):
                    self.delete(m.id)
                    return True
        return super().eventFilter(watched, event)
