"""Ctrl+K: jump to a conversation by typing part of its title.

A filter field over a list of matches (a ``QSortFilterProxyModel`` over the app's
``ConversationListModel``, which stays live while the switcher is open). Matching ignores case;
prefixes rank first, then matches at a word start, then anywhere, then fuzzy ones (the letters in
order, with gaps); ties keep the list's order (pinned first, then most recent). Up/Down (and
Page Up/Down) move, Enter emits ``chosen(conversation_id)`` and closes, Esc closes.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QAbstractItemView, QDialog, QLabel, QLineEdit, QListView, QVBoxLayout

from .models import ConversationListModel

Index = QModelIndex | QPersistentModelIndex


def match_score(pattern: str, title: str) -> int | None:
    """Lower is better: 0 prefix, 1 word start, 2 substring, 3 fuzzy; None: no match."""
    p, t = pattern.casefold().strip(), title.casefold()
    if not p:
        return 0
    if t.startswith(p):
        return 0
    at = t.find(p)
    if at >= 0:
        while at >= 0:
            if not t[at - 1].isalnum():
                return 1
            at = t.find(p, at + 1)
        return 2
    it = iter(t)
    if all(ch in it for ch in p.replace(" ", "")):  # each letter found after the previous one
        return 3
    return None


class ConversationFilter(QSortFilterProxyModel):
    """Keeps the conversations whose title matches :attr:`pattern`, best matches first."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pattern = ""
        self.setDynamicSortFilter(True)

    def set_pattern(self, pattern: str) -> None:
        self.pattern = pattern
        self.invalidate()  # filter and order both depend on the pattern
        self.sort(0)

    def _score(self, source_row: int) -> int | None:
        title = self.sourceModel().index(source_row, 0).data(Qt.ItemDataRole.DisplayRole)
        return match_score(self.pattern, str(title or ""))

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        return self._score(source_row) is not None

    def lessThan(self, left: Index, right: Index) -> bool:
        a, b = self._score(left.row()), self._score(right.row())
        return (a if a is not None else 9, left.row()) < (b if b is not None else 9, right.row())


class QuickSwitcher(QDialog):
    """``QuickSwitcher(list_model, parent)``; connect ``chosen`` and call ``open()``."""

    chosen = Signal(str)

    def __init__(self, model: ConversationListModel, parent: Any = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Go to conversation")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.source = model
        self.proxy = ConversationFilter(self)
        self.proxy.setSourceModel(model)
        self.proxy.sort(0)
        self.edit = QLineEdit(self)
        self.edit.setPlaceholderText("Type part of a conversation's title")
        self.edit.setAccessibleName("Conversation title filter")
        self.edit.setClearButtonEnabled(True)
        self.list = QListView(self)
        self.list.setModel(self.proxy)
        self.list.setAccessibleName("Matching conversations")
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # typing stays in the filter field
        self.list.activated.connect(self._choose_index)
        self.list.clicked.connect(self._choose_index)
        self.empty = QLabel("No conversation matches", self)
        self.empty.setVisible(False)
        layout = QVBoxLayout(self)
        layout.addWidget(self.edit)
        layout.addWidget(self.list)
        layout.addWidget(self.empty)
        self.edit.textChanged.connect(self._filter)
        self.edit.installEventFilter(self)
        self.proxy.rowsInserted.connect(self._keep_selection)
        self.proxy.rowsRemoved.connect(self._keep_selection)
        self.proxy.modelReset.connect(self._keep_selection)
        self.resize(420, 360)
        self._select(0)
        self.edit.setFocus()

    def matches(self) -> list[str]:
        """The titles listed, in order."""
        return [
            str(self.proxy.index(r, 0).data(Qt.ItemDataRole.DisplayRole))
            for r in range(self.proxy.rowCount())
        ]

    def current_id(self) -> str | None:
        index = self.list.currentIndex()
        return index.data(ConversationListModel.IdRole) if index.isValid() else None

    def _filter(self, text: str) -> None:
        self.proxy.set_pattern(text)
        self._select(0)

    def _keep_selection(self, *_args: Any) -> None:
        if not self.list.currentIndex().isValid():
            self._select(0)
        self.empty.setVisible(self.proxy.rowCount() == 0)

    def _select(self, row: int) -> None:
        count = self.proxy.rowCount()
        self.empty.setVisible(count == 0)
        if count == 0:
            self.list.setCurrentIndex(QModelIndex())
            return
        index = self.proxy.index(max(0, min(row, count - 1)), 0)
        self.list.setCurrentIndex(index)
        self.list.scrollTo(index)

    def _choose_index(self, index: QModelIndex) -> None:
        if index.isValid():
            self.list.setCurrentIndex(index)
            self._choose()

    def _choose(self) -> None:
        cid = self.current_id()
        if cid is None:
            return
        self.chosen.emit(cid)
        self.accept()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            watched is self.edit
            and isinstance(event, QKeyEvent)
            and event.type() == QEvent.Type.KeyPress
        ):
            key, row = event.key(), self.list.currentIndex().row()
            page = max(1, self.list.viewport().height() // max(1, self.list.sizeHintForRow(0)))
            moves: dict[int, int] = {  # QKeyEvent.key() is an int; Qt.Key is an IntEnum
                Qt.Key.Key_Up: row - 1,
                Qt.Key.Key_Down: row + 1,
                Qt.Key.Key_PageUp: row - page,
                Qt.Key.Key_PageDown: row + page,
            }
            if key in moves:
                self._select(moves[key])
                return True
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self._choose()
                return True
            if key == Qt.Key.Key_Escape:
                self.reject()
                return True
        return super().eventFilter(watched, event)
