"""Qt item models over the core's views. One change touches one row: ``dataChanged`` for that
row, or a single insert/move/remove — never a model reset per event."""

from __future__ import annotations

import bisect
import sys
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QByteArray,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
)

from core.model import ConversationView, MessageView, sort_key
from ui.message_format import full_time, starts_day, starts_group

Index = QModelIndex | QPersistentModelIndex


class ConversationListModel(QAbstractListModel):
    IdRole = Qt.ItemDataRole.UserRole + 1
    UnreadRole = Qt.ItemDataRole.UserRole + 2
    PinnedRole = Qt.ItemDataRole.UserRole + 3
    PendingRole = Qt.ItemDataRole.UserRole + 4
    FailedRole = Qt.ItemDataRole.UserRole + 5
    ViewRole = Qt.ItemDataRole.UserRole + 6

    def __init__(self, views: list[ConversationView] | None = None, parent: Any = None) -> None:
        super().__init__(parent)
        self._views: list[ConversationView] = sorted(views or [], key=sort_key)
        self._keys = [sort_key(v) for v in self._views]
        self._rows = {v.id: i for i, v in enumerate(self._views)}
        self._holds = 0  # hold_order(True) calls not yet released
        self._stale: set[str] = set()  # rows kept out of their place while held

    def hold_order(self, on: bool) -> None:
        """Hold (``True``) or release the row order; counted, so several views may hold it.
        Held, a changed row updates where it is and a new one goes to the end, so no row moves
        under the pointer; released, each moves to its place (one move, never a reset). The
        user's own changes (pending views) move at once."""
        self._holds = max(0, self._holds + (1 if on else -1))
        if self._holds == 0 and self._stale:
            stale, self._stale = self._stale, set()
            for cid in stale:
                row = self._rows.get(cid)
                if row is not None:
                    self.upsert(self._views[row])

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._views)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._views):
            return None
        v = self._views[index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            return v.title
        if role == Qt.ItemDataRole.ToolTipRole:
            return (
                f"{v.title}\nMembers: {', '.join(v.members)}"
                + ("\nNot yet confirmed by the server" if v.pending else "")
                + (f"\nFailed: {v.error}" if v.failed else "")
            )
        if role == Qt.ItemDataRole.AccessibleTextRole:
            last = f", last message from {v.last.author}: {v.last.text}" if v.last else ""
            return f"{v.title}, {v.unread} unread" + (", pinned" if v.pinned else "") + last
        return {
            self.IdRole: v.id,
            self.UnreadRole: v.unread,
            self.PinnedRole: v.pinned,
            self.PendingRole: v.pending,
            self.FailedRole: v.failed,
            self.ViewRole: v,
        }.get(role)

    def roleNames(self) -> dict[int, QByteArray]:
        return {
            **super().roleNames(),
            self.IdRole: QByteArray(b"id"),
            self.UnreadRole: QByteArray(b"unread"),
            self.PinnedRole: QByteArray(b"pinned"),
            self.PendingRole: QByteArray(b"pending"),
        }

    def view(self, row: int) -> ConversationView:
        return self._views[row]

    def row_of(self, conversation_id: str) -> int | None:
        return self._rows.get(conversation_id)

    def _reindex(self, lo: int, hi: int) -> None:
        for i in range(lo, min(hi, len(self._views))):
            self._rows[self._views[i].id] = i

    def apply(self, changed: list[ConversationView], removed: list[str]) -> None:
        for cid in removed:
            self.remove(cid)
        for view in changed:
            self.upsert(view)

    def upsert(self, view: ConversationView) -> None:
        key = sort_key(view)
        row = self._rows.get(view.id)
        # Held: keep the row's place (a new row: after every other), unless the change is the
        # user's own (pending: a pin, a send, a new conversation), which they expect to see move.
        if self._holds and not view.pending:
            held = self._keys[row] if row is not None else (True, sys.maxsize, view.id)
            if held != key:
                self._stale.add(view.id)
                key = held
        if row is None:
            pos = bisect.bisect_left(self._keys, key)
            self.beginInsertRows(QModelIndex(), pos, pos)
            self._views.insert(pos, view)
            self._keys.insert(pos, key)
            self._reindex(pos, len(self._views))
            self.endInsertRows()
            return
        if self._keys[row] == key:
            self._views[row] = view
            idx = self.index(row)
            self.dataChanged.emit(idx, idx)
            return
        pos = bisect.bisect_left(self._keys[:row] + self._keys[row + 1 :], key)
        dest = pos if pos < row else pos + 1  # beginMoveRows counts in the pre-move list
        if dest in (row, row + 1):
            self._views[row], self._keys[row] = view, key
        else:
            self.beginMoveRows(QModelIndex(), row, row, QModelIndex(), dest)
            del self._views[row], self._keys[row]
            self._views.insert(pos, view)
            self._keys.insert(pos, key)
            self._reindex(min(row, pos), max(row, pos) + 1)
            self.endMoveRows()
        idx = self.index(self._rows[view.id])
        self.dataChanged.emit(idx, idx)

    def remove(self, conversation_id: str) -> None:
        row = self._rows.pop(conversation_id, None)
        if row is None:
            return
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._views[row], self._keys[row]
        self._reindex(row, len(self._views))
        self.endRemoveRows()

    def total_unread(self) -> int:
        return sum(v.unread for v in self._views)


class MessageListModel(QAbstractListModel):
    """The messages of one conversation in order; pending ones last until the server's copy
    (same id) replaces them in place."""

    ViewRole = Qt.ItemDataRole.UserRole + 1
    PendingRole = Qt.ItemDataRole.UserRole + 2
    AuthorRole = Qt.ItemDataRole.UserRole + 3
    GroupStartRole = Qt.ItemDataRole.UserRole + 4  # shows the header (ui.message_format)
    DayStartRole = Qt.ItemDataRole.UserRole + 5  # first message of a day: a separator above

    def __init__(self, messages: list[MessageView] | None = None, parent: Any = None) -> None:
        super().__init__(parent)
        self._items: list[MessageView] = []
        self._rows: dict[str, int] = {}
        self.upsert(messages or [])

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._items)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._items):
            return None
        m = self._items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return m.body
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return (
                f"{m.author}: {m.body}"
                + (" (edited)" if m.edited else "")
                + (" (sending)" if m.pending or m.edit_pending else "")
            )
        if role in (self.GroupStartRole, self.DayStartRole):
            prev = self._items[index.row() - 1] if index.row() > 0 else None
            return (starts_group if role == self.GroupStartRole else starts_day)(prev, m)
        if role == Qt.ItemDataRole.ToolTipRole:
            return full_time(m.created_at)
        return {self.ViewRole: m, self.PendingRole: m.pending, self.AuthorRole: m.author}.get(role)

    def touch(self, row: int) -> None:
        """Say that ``row`` may look different (its predecessor changed: header, separator)."""
        if 0 <= row < len(self._items):
            idx = self.index(row)
            self.dataChanged.emit(idx, idx)

    def message(self, row: int) -> MessageView:
        return self._items[row]

    @staticmethod
    def _order(m: MessageView) -> tuple[int, int, int]:
        # Confirmed messages by server seq; pending ones after them, by creation time.
        return (1, 0, m.created_at) if m.seq is None else (0, m.seq, 0)

    def prune(self, latest: list[MessageView]) -> int:
        """Remove the confirmed messages that ``latest`` (a conversation's newest cached
        messages, after a resync) should hold but does not: they were deleted meanwhile. Older
        pages above its range and pending sends stay. Returns how many rows went."""
        keep = {m.id for m in latest}
        seqs = [m.seq for m in latest if m.seq is not None]
        lowest = min(seqs) if seqs else None
        gone = [
            m.id
            for m in self._items
            if m.seq is not None and m.id not in keep and (lowest is None or m.seq >= lowest)
        ]
        for mid in gone:
            row = self._rows[mid]
            self.beginRemoveRows(QModelIndex(), row, row)
            del self._items[row]
            self._rows = {x.id: i for i, x in enumerate(self._items)}
            self.endRemoveRows()
            self.touch(row)
        return len(gone)

    def upsert(self, messages: list[MessageView]) -> int:
        """Add or replace messages; returns how many rows were added."""
        added = 0
        for m in sorted(messages, key=self._order):
            row = self._rows.get(m.id)
            if row is not None:
                if not m.deleted and self._order(self._items[row]) == self._order(m):
                    self._items[row] = m
                    idx = self.index(row)
                    self.dataChanged.emit(idx, idx)
                    self.touch(row + 1)
                    continue
                self.beginRemoveRows(QModelIndex(), row, row)
                del self._items[row]
                self._rows = {x.id: i for i, x in enumerate(self._items)}
                self.endRemoveRows()
                self.touch(row)
                added -= 1
            if m.deleted:  # a deleted message: its row goes, nothing takes its place
                continue
            pos = bisect.bisect_right(self._items, self._order(m), key=self._order)
            self.beginInsertRows(QModelIndex(), pos, pos)
            self._items.insert(pos, m)
            for i in range(pos, len(self._items)):
                self._rows[self._items[i].id] = i
            self.endInsertRows()
            self.touch(pos + 1)
            added += 1
        return added
