"""The conversation list: a :class:`QListView` over a :class:`ConversationListModel`.

It never changes anything itself: every user action becomes a signal (open, open in a new window,
rename, pin, delete) that the window turns into a ``Client`` call. The model stays read-only; a
thin identity proxy only marks titles editable so the delegate's inline editor (F2) can open,
and a committed edit is reported as ``renameRequested`` instead of being written.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import (
    QIdentityProxyModel,
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QAction, QContextMenuEvent, QKeyEvent, QKeySequence, QPaintEvent
from PySide6.QtWidgets import QAbstractItemView, QListView, QMenu, QWidget

from ui.a11y import FocusFrame
from ui.conversation_delegate import ConversationDelegate
from ui.dialogs import confirm_delete
from ui.empty_state import NO_CONVERSATIONS, Texts, paint_empty_state
from ui.hover_hold import HoldOrderWhileHovered
from ui.models import ConversationListModel

Index = QModelIndex | QPersistentModelIndex
Confirm = Callable[[QWidget, str], bool]


class _EditableTitles(QIdentityProxyModel):
    """Marks rows editable so the view may open an editor; ``setData`` is never used."""

    def flags(self, index: Index) -> Qt.ItemFlag:
        flags = super().flags(index)
        return flags | Qt.ItemFlag.ItemIsEditable if index.isValid() else flags


class ConversationListView(QListView):
    """Signals carry conversation ids. Open: click or Enter (which also emits
    ``openedWithKeyboard``, so the window can hand the keyboard on). New window: double-click or the
    context menu. Rename: F2 or the menu (inline). Delete: the Delete key or the menu, after
    ``confirm(parent, title)`` (injectable; defaults to :func:`confirm_delete`)."""

    openRequested = Signal(str)
    openedWithKeyboard = Signal(str)  # after openRequested, for Enter: typing goes on elsewhere
    openInNewWindowRequested = Signal(str)
    renameRequested = Signal(str, str)
    pinRequested = Signal(str, bool)
    deleteRequested = Signal(str)

    def __init__(
        self,
        model: ConversationListModel,
        parent: QWidget | None = None,
        confirm: Confirm | None = None,
    ) -> None:
        super().__init__(parent)
        self.confirm: Confirm = confirm or confirm_delete
        self.me: str | None = None  # when set, Delete is offered only on conversations I created
        self._source = model
        self._proxy = _EditableTitles(self)
        self._proxy.setSourceModel(model)
        self.setModel(self._proxy)
        self.delegate = ConversationDelegate(self)
        self.delegate.renameCommitted.connect(self.renameRequested)
        self.setItemDelegate(self.delegate)
        self.setUniformItemSizes(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)  # F2 handled below
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setMouseTracking(True)
        self.viewport().setAttribute(Qt.WidgetAttribute.WA_Hover)  # the hovered row is tinted
        self.empty_texts: Texts | None = NO_CONVERSATIONS  # shown while there are no rows
        model.rowsInserted.connect(self._repaint)  # a method: disconnected when the view goes
        model.rowsRemoved.connect(self._repaint)
        self.setAccessibleName("Conversations")
        self.setAccessibleDescription(
            "Enter opens, F2 renames, Delete deletes, the context menu has more"
        )
        self.clicked.connect(self._open)
        self.doubleClicked.connect(self._open_new_window)
        # Rows never move under the pointer (a click would open the wrong conversation).
        self.order_hold = HoldOrderWhileHovered(self, model)
        self.focus_frame = FocusFrame(self)  # visible keyboard focus

    # --- public API ------------------------------------------------------------------------------

    def source_model(self) -> ConversationListModel:
        return self._source

    def select(self, conversation_id: str) -> bool:
        """Make ``conversation_id`` the current, selected row; False when it is not listed."""
        row = self._source.row_of(conversation_id)
        if row is None:
            return False
        index = self._proxy.index(row, 0)
        self.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect
        )
        self.scrollTo(index)
        return True

    def selected_id(self) -> str | None:
        rows = self.selectionModel().selectedIndexes()
        return str(rows[0].data(ConversationListModel.IdRole)) if rows else None

    def rename(self, conversation_id: str | None = None) -> bool:
        """Open the inline title editor on a row (the selected one by default)."""
        index = self._index(conversation_id)
        if not index.isValid():
            return False
        self.setCurrentIndex(index)
        trigger = QAbstractItemView.EditTrigger.AllEditTriggers
        # Qt takes a null event here; PySide6's stub does not let the argument be None.
        return self.edit(index, trigger, None)  # type: ignore[call-overload]

    def request_delete(self, conversation_id: str | None = None) -> bool:
        """Ask for confirmation, then emit ``deleteRequested``; returns whether it did."""
        index = self._index(conversation_id)
        if not index.isValid():
            return False
        cid = str(index.data(ConversationListModel.IdRole))
        if not self._may_delete(index):
            return False
        if not self.confirm(self, str(index.data(Qt.ItemDataRole.DisplayRole))):
            return False
        self.deleteRequested.emit(cid)
        return True

    def context_menu(self, index: Index) -> QMenu | None:
        """The menu for one row (``None`` off the rows); its actions are named for tests."""
        if not index.isValid():
            return None
        cid = str(index.data(ConversationListModel.IdRole))
        pinned = bool(index.data(ConversationListModel.PinnedRole))
        menu = QMenu(self)
        menu.setAccessibleName("Conversation actions")

        def add(name: str, text: str, slot: Callable[[], object]) -> QAction:
            action = QAction(text, menu)
            action.setObjectName(name)
            action.triggered.connect(lambda _checked=False: slot())
            menu.addAction(action)
            return action

        add(
            "open_new_window",
            "Open in &New Window",
            lambda: self.openInNewWindowRequested.emit(cid),
        )
        add("rename", "&Rename", lambda: self.rename(cid)).setShortcut(QKeySequence(Qt.Key.Key_F2))
        add("pin", "Un&pin" if pinned else "&Pin", lambda: self.pinRequested.emit(cid, not pinned))
        menu.addSeparator()
        delete = add("delete", "&Delete…", lambda: self.request_delete(cid))
        delete.setShortcut(QKeySequence(QKeySequence.StandardKey.Delete))
        delete.setEnabled(self._may_delete(index))
        return menu

    # --- events ----------------------------------------------------------------------------------

    def _index(self, conversation_id: str | None) -> QModelIndex:
        if conversation_id is None:
            return self.currentIndex()
        row = self._source.row_of(conversation_id)
        return self._proxy.index(row, 0) if row is not None else QModelIndex()

    def _may_delete(self, index: Index) -> bool:
        view = index.data(ConversationListModel.ViewRole)
        return self.me is None or view is None or view.creator == self.me

    def _open(self, index: QModelIndex) -> None:
        if index.isValid():
            self.openRequested.emit(str(index.data(ConversationListModel.IdRole)))

    def _open_new_window(self, index: QModelIndex) -> None:
        if index.isValid():
            self.openInNewWindowRequested.emit(str(index.data(ConversationListModel.IdRole)))

    def keyPressEvent(self, event: QKeyEvent) -> None:
        editing = self.state() == QAbstractItemView.State.EditingState
        if not editing and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            index = self.currentIndex()
            if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
                self._open_new_window(index)
            elif index.isValid():  # opens, never sends: the list has no text to send
                self._open(index)
                self.openedWithKeyboard.emit(str(index.data(ConversationListModel.IdRole)))
            event.accept()
            return
        if not editing and event.key() == Qt.Key.Key_F2:
            self.rename()
            event.accept()
            return
        if not editing and event.matches(QKeySequence.StandardKey.Delete):
            self.request_delete()
            event.accept()
            return
        super().keyPressEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        paint_empty_state(self, self.empty_texts)

    def _repaint(self, *_rows: object) -> None:
        self.viewport().update()  # the empty state comes and goes with the rows

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        if event.reason() == QContextMenuEvent.Reason.Mouse:
            index = self.indexAt(event.pos())
            pos = event.globalPos()
        else:  # the Menu key or Shift+F10: the current row
            index = self.currentIndex()
            pos = self.viewport().mapToGlobal(self.visualRect(index).center())
        menu = self.context_menu(index)
        if menu is None:
            return
        if index.isValid():
            self.setCurrentIndex(index)
        menu.exec(pos)
        menu.deleteLater()
        event.accept()
