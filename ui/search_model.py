"""The rows of the search popup (Ctrl+K) and how they are painted: group headers
("Conversations", "Messages", "More on the server"), conversation and message hits with the
matched words highlighted, and status rows ("Searching the server…", "Load more…").

Text is never markup: every piece of a title or a message is escaped before the highlight is
laid over it, so another user's text cannot render as HTML.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, QSize, Qt
from PySide6.QtGui import QAbstractTextDocumentLayout, QPainter, QPalette, QTextDocument
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from core.search_results import ConversationHit, MessageHit

Index = QModelIndex | QPersistentModelIndex
Range = tuple[int, int]
SNIPPET = 160  # characters of a message shown around its first match


@dataclass(frozen=True, slots=True)
class Row:
    """One row: ``kind`` is header, conversation, message, more (load the server's next page)
    or status (not selectable)."""

    kind: str
    text: str
    detail: str = ""
    ranges: tuple[Range, ...] = ()
    conversation_id: str | None = None
    message: MessageHit | None = None

    @property
    def selectable(self) -> bool:
        return self.kind in ("conversation", "message", "more")


def conversation_row(hit: ConversationHit) -> Row:
    view = hit.conversation
    unread = f"{view.unread} unread" if view.unread else ""
    return Row("conversation", view.title, unread, hit.ranges, view.id)


def message_row(hit: MessageHit) -> Row:
    m = hit.message
    text, ranges = snippet(m.body, hit.ranges)
    when = datetime.fromtimestamp(m.created_at / 1000).strftime("%Y-%m-%d %H:%M")
    return Row(
        "message", text, f"{hit.title} · {m.author} · {when}", ranges, m.conversation_id, hit
    )


def snippet(body: str, ranges: tuple[Range, ...]) -> tuple[str, tuple[Range, ...]]:
    """One line of ``body`` around its first match (with "…" where cut), ranges moved along."""
    flat = " ".join(body.split("\n"))
    start = max(0, ranges[0][0] - SNIPPET // 4) if ranges else 0
    text = flat[start : start + SNIPPET]
    lead = "…" if start else ""
    tail = "…" if start + SNIPPET < len(flat) else ""
    shift = len(lead) - start
    moved = tuple(
        (a + shift, min(b, start + SNIPPET) + shift)
        for a, b in ranges
        if start <= a < start + SNIPPET
    )
    return lead + text + tail, moved


def highlighted_html(
    text: str, ranges: tuple[Range, ...], palette: QPalette, selected: bool = False
) -> str:
    """``text`` escaped, with ``ranges`` bold in the palette's highlight colours (on a selected
    row, which already has them: bold and underlined)."""
    bg = palette.color(QPalette.ColorRole.Highlight).name()
    fg = palette.color(QPalette.ColorRole.HighlightedText).name()
    style = "text-decoration:underline" if selected else f"background-color:{bg}; color:{fg}"
    out, at = [], 0
    for a, b in sorted(ranges):
        if a < at:
            continue
        out.append(html.escape(text[at:a]))
        out.append(f'<b style="{style}">{html.escape(text[a:b])}</b>')
        at = b
    out.append(html.escape(text[at:]))
    return "".join(out)


class ResultsModel(QAbstractListModel):
    """The popup's rows; ``set_rows`` replaces them (a search is a new list, not an edit)."""

    RowRole = Qt.ItemDataRole.UserRole + 1

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[Row] = []

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def set_rows(self, rows: list[Row]) -> None:
        self.beginResetModel()
        self._rows = rows
        self.endResetModel()

    def rows(self) -> list[Row]:
        return list(self._rows)

    def row(self, index: int) -> Row:
        return self._rows[index]

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid() or not self._rows[index.row()].selectable:
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return row.text
        if role == Qt.ItemDataRole.AccessibleTextRole:
            if row.kind == "message" and row.message is not None:
                m = row.message
                return f"Message from {m.message.author} in {m.title}: {row.text}"
            if row.kind == "conversation":
                return f"Conversation {row.text}" + (f", {row.detail}" if row.detail else "")
            return row.text
        if role == Qt.ItemDataRole.ToolTipRole and row.kind == "message":
            return row.detail
        if role == self.RowRole:
            return row
        return None


class ResultDelegate(QStyledItemDelegate):
    """Headers small and muted; hits as rich text with the matches highlighted; a message hit
    has a second line (conversation · author · time)."""

    def _doc(self, row: Row, option: QStyleOptionViewItem, selected: bool) -> QTextDocument:
        pal = option.palette
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        color = pal.color(role).name()
        muted = pal.color(
            QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.PlaceholderText
        ).name()
        if row.kind == "header":
            body = f'<b style="color:{muted}">{html.escape(row.text.upper())}</b>'
        elif row.kind in ("status", "more"):
            body = f'<i style="color:{muted if row.kind == "status" else color}">'
            body += f"{html.escape(row.text)}</i>"
        else:
            marked = highlighted_html(row.text, row.ranges, pal, selected)
            body = f'<span style="color:{color}">{marked}</span>'
            if row.detail:
                body += f'<br><small style="color:{muted}">{html.escape(row.detail)}</small>'
        doc = QTextDocument()
        doc.setDefaultFont(option.font)
        doc.setDocumentMargin(4)
        doc.setHtml(body)
        doc.setTextWidth(max(50, option.rect.width()))
        return doc

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        row = index.data(ResultsModel.RowRole)
        if not isinstance(row, Row):
            return super().paint(painter, option, index)
        self.initStyleOption(option, index)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        widget: QWidget | None = option.widget
        style = widget.style() if widget is not None else None
        text, option.text = option.text, ""
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, option, painter, widget)
        option.text = text
        doc = self._doc(row, option, selected)
        painter.save()
        painter.translate(option.rect.topLeft())
        ctx = QAbstractTextDocumentLayout.PaintContext()
        doc.documentLayout().draw(painter, ctx)
        painter.restore()

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:
        row = index.data(ResultsModel.RowRole)
        if not isinstance(row, Row):
            return super().sizeHint(option, index)
        self.initStyleOption(option, index)
        doc = self._doc(row, option, False)
        return QSize(int(doc.idealWidth()), int(doc.size().height()))
