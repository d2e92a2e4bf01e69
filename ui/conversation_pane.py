"""One conversation: a header (title with inline rename, pin, delete), the message history and
the composer. It renders the core ``Client``'s state and calls its methods; it never keeps its own
copy of the truth beyond what is on screen, so every window and device shows the same thing."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeyEvent, QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from core.protocol import MAX_TITLE_CHARS
from ui.composer import Composer
from ui.conversation_list import Confirm
from ui.dialogs import confirm_delete
from ui.drafts import DraftKeeper
from ui.elided_label import ElidedLabel
from ui.empty_state import NO_MESSAGES, NO_SELECTION
from ui.gone import gone, watch
from ui.jump import oldest_shown_seq
from ui.message_edit import MessageActions
from ui.message_list import MessageListView
from ui.paint import danger_color, scaled_font
from ui.tasks import error_text, spawn

if TYPE_CHECKING:
    from core.model import ConversationView, MessageView

DELETED_HERE = "This conversation was deleted."
NOT_FOUND = "This conversation no longer exists."


class TitleEdit(QLineEdit):
    """The header's inline title editor: Enter (or leaving it) commits, Escape cancels."""

    cancelled = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.cancelled.emit()
            event.accept()
            return
        super().keyPressEvent(event)


class ConversationPane(QWidget):
    """Shows one conversation of ``client`` and follows it through ``bridge`` (a ClientBridge).

    Signals: ``conversationLeft(id)`` when the conversation disappears while shown (deleted
    elsewhere), ``conversationDeleted(id)`` when the user deleted it from this pane,
    ``errorText(str)`` whenever a refused action is shown in the inline error label,
    ``conversationShown(id)`` whenever it is asked to show a conversation that exists.
    The composer's text is the shown conversation's draft (see :mod:`ui.drafts`).
    """

    conversationShown = Signal(str)
    conversationLeft = Signal(str)
    conversationGone = Signal(object)  # a ui.gone.Gone: what to tell about one that left
    conversationDeleted = Signal(str)
    errorText = Signal(str)

    def __init__(
        self,
        client: Any,
        bridge: Any,
        parent: QWidget | None = None,
        confirm: Confirm | None = None,
    ) -> None:
        super().__init__(parent)
        self.client, self.bridge = client, bridge
        self.confirm: Confirm = confirm or confirm_delete
        self._cid: str | None = None
        self._title = ""
        self._creator: str | None = None
        self._renaming = False
        self._deleting: set[str] = set()
        self._loading_older = False
        self._left_here: str | None = None  # deleted from here; shown again if that is refused
        self.setAccessibleName("Conversation")
        self._build()
        self.drafts = DraftKeeper(self.composer, client, bridge)
        watch(client)  # notes this device's deletes as they happen (ui/gone.py)
        self.message_actions = MessageActions(self)  # edit and delete own messages
        bridge.conversationsChanged.connect(self._on_conversations)
        bridge.messagesAdded.connect(self._on_messages)
        bridge.messagesReloaded.connect(self._on_reloaded)
        bridge.error.connect(self._on_error)
        self._show_empty()

    def _build(self) -> None:
        self.title_label = ElidedLabel()  # "…" when narrow; the tooltip has the full title
        self.title_label.setObjectName("conversationTitle")
        self.title_label.setAccessibleName("Conversation title")
        font = scaled_font(self.title_label.font(), 1.2)
        font.setBold(True)
        self.title_label.setFont(font)
        self.title_edit = TitleEdit()
        self.title_edit.setAccessibleName("New conversation title")
        self.title_edit.setMaxLength(MAX_TITLE_CHARS)
        self.title_edit.hide()
        self.title_edit.editingFinished.connect(self.commit_rename)
        self.title_edit.cancelled.connect(self.cancel_rename)
        self.rename_button = self._tool("Rename", "Rename conversation (F2)", self.start_rename)
        self.pin_button = self._tool("Pin", "Pin conversation to the top of the list", None)
        self.pin_button.setCheckable(True)
        self.pin_button.clicked.connect(self._pin_clicked)
        self.delete_button = self._tool("Delete…", "Delete conversation", self.request_delete)
        self.rename_action = QAction("Rename", self)
        self.rename_action.setShortcut(QKeySequence(Qt.Key.Key_F2))
        self.rename_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.rename_action.triggered.connect(self.start_rename)
        self.addAction(self.rename_action)
        header = QHBoxLayout()
        header.addWidget(self.title_label, 1)
        header.addWidget(self.title_edit, 1)
        for button in (self.rename_button, self.pin_button, self.delete_button):
            header.addWidget(button)

        self.notice = QLabel()
        self.notice.setObjectName("conversationNotice")
        self.notice.setAccessibleName("Notice")
        self.notice.setWordWrap(True)
        self.notice.hide()
        self.error_label = QLabel()
        self.error_label.setObjectName("conversationError")
        self.error_label.setAccessibleName("Error")
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        self._color_error()

        self.messages = MessageListView()
        self.messages.delegate.me = getattr(self.client, "me", None)  # my messages: on the right
        self.messages.olderRequested.connect(self.load_older)
        self.messages.reachedBottom.connect(self._maybe_mark_read)
        self.composer = Composer()
        self.composer.submitted.connect(self.send)
        self.send_button = QPushButton("Send")
        self.send_button.setAccessibleName("Send message")
        self.send_button.clicked.connect(self.composer.submit)
        bottom = QHBoxLayout()
        bottom.addWidget(self.composer, 1)
        bottom.addWidget(self.send_button, 0, Qt.AlignmentFlag.AlignBottom)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(header)
        layout.addWidget(self.notice)
        layout.addWidget(self.error_label)
        layout.addWidget(self.messages, 1)
        layout.addLayout(bottom)
        self.setFocusProxy(self.messages)  # "list → messages → composer" from outside
        chain = [
            self.messages,
            self.composer,
            self.send_button,
            self.title_edit,
            self.rename_button,
            self.pin_button,
            self.delete_button,
        ]
        for first, second in itertools.pairwise(chain):
            QWidget.setTabOrder(first, second)

    def _tool(self, text: str, accessible: str, slot: Any) -> QToolButton:
        button = QToolButton()
        button.setText(text)
        button.setToolTip(accessible)
        button.setAccessibleName(accessible)
        button.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        if slot is not None:
            button.clicked.connect(lambda _checked=False: slot())
        return button

    # --- public API ------------------------------------------------------------------------------

    def conversation_id(self) -> str | None:
        return self._cid

    def show_conversation(self, conversation_id: str) -> None:
        """Show a conversation (no-op but marking read when it is already shown)."""
        if conversation_id == self._cid:
            self._maybe_mark_read(opening=True)
            self.conversationShown.emit(conversation_id)
            return
        self.cancel_rename()
        self._clear_error()
        self.notice.hide()
        self._left_here = None
        view = self.client.conversation(conversation_id)
        if view is None:
            self._show_empty(NOT_FOUND)
            return
        self._cid = conversation_id
        self.drafts.show(conversation_id)
        messages = self.client.messages(conversation_id)
        self.messages.set_messages(messages)
        self.messages.empty_texts = NO_MESSAGES
        self._set_enabled(True)
        self._render(view)
        self._maybe_mark_read(opening=True)
        if len(messages) < min(view.message_count, 50):
            self.load_older()
        self.conversationShown.emit(conversation_id)

    def focus_composer(self) -> None:
        """Hand the keyboard to the composer (when a conversation is shown)."""
        if self._cid is not None:
            self.composer.setFocus(Qt.FocusReason.OtherFocusReason)

    def save_draft(self) -> None:
        """Store what is typed as the draft now (the window is closing, say)."""
        self.drafts.save()

    def start_rename(self) -> None:
        if self._cid is None:
            return
        self._renaming = True
        self.title_edit.setText(self._title)
        self.title_label.hide()
        self.title_edit.show()
        self.title_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.title_edit.selectAll()

    def commit_rename(self) -> None:
        if not self._renaming:
            return
        title = self.title_edit.text().strip()
        self._end_rename()
        cid = self._cid
        if cid is not None and title != self._title:
            self._clear_error()
            spawn(self.client.rename_conversation(cid, title), self._show_error)

    def cancel_rename(self) -> None:
        if self._renaming:
            self._end_rename()

    def request_delete(self) -> None:
        cid = self._cid
        if cid is None or not self.confirm(self, self._title):
            return
        self._deleting.add(cid)
        self._clear_error()
        self.drafts.set_aside()  # the draft goes with the conversation (back if refused)

        def failed(exc: BaseException) -> None:
            self._deleting.discard(cid)
            self.drafts.put_back(cid)
            if cid == self._cid:
                self.drafts.show(cid)
            self._show_error(exc)

        spawn(self.client.delete_conversation(cid), failed)

    def send(self, text: str) -> None:
        """Send ``text`` (the composer's ``submitted``); restores it on refusal."""
        cid = self._cid
        if cid is None:
            self.composer.restore(text)
            return
        self._clear_error()
        self.messages.scroll_to_bottom()

        def failed(exc: BaseException) -> None:
            self.composer.restore(text)
            self._show_error(exc)

        spawn(self.client.send_message(cid, text), failed, lambda m: self._sent(cid, m))

    def load_older(self) -> None:
        cid = self._cid
        if cid is None or self._loading_older:
            return
        self._loading_older = True

        def done(older: list[MessageView]) -> None:
            self._loading_older = False
            if cid != self._cid:
                return
            older = [m for m in older if m.seq is not None]
            if older:
                self.messages.prepend(older)
            else:
                self.messages.has_older = False

        def failed(exc: BaseException) -> None:
            self._loading_older = False
            self._show_error(exc)

        spawn(self.client.load_older(cid, 50, oldest_shown_seq(self)), failed, done)

    def error(self) -> str | None:
        """The inline error shown, if any."""
        return None if self.error_label.isHidden() else self.error_label.text()

    def notice_text(self) -> str | None:
        return None if self.notice.isHidden() else self.notice.text()

    # --- client events ---------------------------------------------------------------------------

    def _on_conversations(self, changed: list[ConversationView], removed: list[str]) -> None:
        cid = self._cid
        if cid is None:
            back = self._left_here
            if back is not None and any(v.id == back for v in changed):
                self._left_here = None  # our delete was refused: show the conversation again
                self.drafts.put_back(back)
                error = self.error()
                self.show_conversation(back)
                if error:
                    self._show_error(RuntimeError(error))
            return
        if cid in removed or self.client.conversation(cid) is None:
            self._leave(cid)
            return
        for view in changed:
            if view.id == cid:
                self._render(view)
                if view.unread:
                    self._maybe_mark_read()

    def _on_messages(self, cid: str, messages: list[MessageView]) -> None:
        if cid == self._cid:
            self.messages.add(messages)
            self._maybe_mark_read()

    def _on_reloaded(self, cid: str, messages: list[MessageView]) -> None:
        if cid == self._cid:
            self.messages.message_model().prune(messages)

    def _on_error(self, info: Any) -> None:
        cid = getattr(info, "conversation_id", None)
        if cid is not None and cid in (self._cid, self._left_here):
            self._deleting.discard(cid)
            self._show_error(RuntimeError(getattr(info, "message", "refused")))

    def _sent(self, cid: str, message: MessageView) -> None:
        if cid == self._cid and isValid(self):
            self.messages.add([message])  # shown as pending at once, before the next frame

    def expect_delete(self, cid: str) -> None:
        """The user deletes ``cid`` from this window (its list): when it goes, say so as for
        the pane's own Delete, never "deleted elsewhere"."""
        self._deleting.add(cid)

    def _leave(self, cid: str) -> None:
        here = cid in self._deleting
        self._deleting.discard(cid)
        title, draft = self._title, self.drafts.take()  # never dropped with the conversation
        if here:
            self._show_empty(DELETED_HERE)
            self._left_here = cid
            self.conversationDeleted.emit(cid)
            return
        # Deleted elsewhere: the empty state, and a toast from the window (see ui/gone.py).
        self._show_empty()
        self._left_here = None
        self.conversationGone.emit(gone(self.client, cid, title, self._creator, draft))
        self.conversationLeft.emit(cid)

    # --- helpers ---------------------------------------------------------------------------------

    def _maybe_mark_read(self, opening: bool = False) -> None:
        """Mark read if the user can see the newest messages: shown, and (unless just opened)
        in the active window and scrolled to the bottom."""
        cid = self._cid
        if cid is None or not self.isVisible():
            return
        view = self.client.conversation(cid)
        if view is None or view.unread <= 0:
            return
        if not opening and not (self.window().isActiveWindow() and self.messages.at_bottom()):
            return
        spawn(self.client.mark_read(cid), self._show_error)

    def _mark_read_soon(self, opening: bool = False) -> None:
        """:meth:`_maybe_mark_read` on the next turn of the event loop, if the pane still exists."""

        def later() -> None:
            if isValid(self):
                self._maybe_mark_read(opening=opening)

        QTimer.singleShot(0, later)

    def _render(self, view: ConversationView) -> None:
        self._title, self._creator = view.title, view.creator
        self.title_label.setText(view.title)
        font = self.title_label.font()
        font.setItalic(view.pending)  # as in the list: not yet confirmed by the server
        self.title_label.setFont(font)
        pending = "\nNot yet confirmed by the server" if view.pending else ""
        self.title_label.setToolTip(f"{view.title}\nMembers: {', '.join(view.members)}{pending}")
        self.pin_button.setChecked(view.pinned)
        self.pin_button.setText("Unpin" if view.pinned else "Pin")
        self.pin_button.setAccessibleName(
            "Unpin conversation" if view.pinned else "Pin conversation"
        )
        mine = view.creator == getattr(self.client, "me", view.creator)
        self.delete_button.setEnabled(mine)
        self.delete_button.setToolTip(
            "Delete conversation" if mine else "Only its creator can delete a conversation"
        )
        if view.failed and view.error:
            self._show_error(RuntimeError(view.error))

    def _show_empty(self, notice: str | None = None) -> None:
        self._cid = None
        self.drafts.show(None)
        self.cancel_rename()
        self._title = ""
        self.title_label.setText("No conversation" if notice is None else "")
        self.messages.set_messages([])
        self.messages.empty_texts = NO_SELECTION
        self._set_enabled(False)
        if notice:
            self.notice.setText(notice)
            self.notice.show()

    def _set_enabled(self, on: bool) -> None:
        for w in (self.rename_button, self.pin_button, self.delete_button, self.composer):
            w.setEnabled(on)
        self.send_button.setEnabled(on)
        self.rename_action.setEnabled(on)

    def _end_rename(self) -> None:
        self._renaming = False
        refocus = self.title_edit.hasFocus()
        self.title_edit.hide()
        self.title_label.show()
        if refocus:
            self.messages.setFocus(Qt.FocusReason.OtherFocusReason)

    def _show_error(self, exc: BaseException) -> None:
        if not isValid(self):
            return
        text = error_text(exc)
        self.error_label.setText(text)
        self.error_label.show()
        self.errorText.emit(text)

    def _color_error(self) -> None:
        self.error_label.setStyleSheet(f"color: {danger_color(self.palette()).name()};")

    def _clear_error(self) -> None:
        self.error_label.hide()
        self.error_label.clear()

    def _pin_clicked(self, checked: bool) -> None:
        cid = self._cid
        if cid is None:
            return
        self._clear_error()

        def failed(exc: BaseException) -> None:
            self._show_error(exc)
            view = self.client.conversation(cid)
            if view is not None and cid == self._cid:
                self._render(view)  # undo the button's own toggle

        spawn(self.client.set_pinned(cid, checked), failed)

    # --- Qt events -------------------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._mark_read_soon(opening=True)

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.WindowActivate:
            self._mark_read_soon()
        elif event.type() == QEvent.Type.PaletteChange:  # light/dark theme switched
            self._color_error()
        return super().event(event)
