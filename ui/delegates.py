"""Item delegates: a conversation row (title, unread pill, pin/pending/failed markers) and a
message bubble (author, time, wrapped body, sending/failed marker).

Everything is drawn with the widget's palette (light and dark themes alike), in floating-point
device-independent coordinates (crisp at any device pixel ratio), and mirrored for right-to-left
layouts through ``QStyle.visualRect``.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QDateTime,
    QLocale,
    QModelIndex,
    QPersistentModelIndex,
    QPointF,
    QRectF,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetricsF,
    QPainter,
    QPalette,
    QPen,
    QTextLayout,
    QTextOption,
)
from PySide6.QtWidgets import (
    QApplication,
    QLineEdit,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from core.protocol import MAX_TITLE_CHARS
from ui.models import ConversationListModel, MessageListModel

Index = QModelIndex | QPersistentModelIndex
PAD = 10.0
GAP = 6.0
ROW_HEIGHT = 40


def badge_text(unread: int) -> str:
    """The unread pill's text: hidden at 0, the count up to 99, then "99+"."""
    if unread <= 0:
        return ""
    return "99+" if unread > 99 else str(unread)


def danger_color(palette: QPalette) -> QColor:
    """A red readable on the palette's base (lighter on dark themes)."""
    dark = palette.color(QPalette.ColorRole.Base).lightnessF() < 0.5
    return QColor("#ef5350") if dark else QColor("#c62828")


def _group(opt: QStyleOptionViewItem) -> QPalette.ColorGroup:
    if not opt.state & QStyle.StateFlag.State_Enabled:
        return QPalette.ColorGroup.Disabled
    if not opt.state & QStyle.StateFlag.State_Active:
        return QPalette.ColorGroup.Inactive
    return QPalette.ColorGroup.Normal


def scaled_font(font: QFont, factor: float) -> QFont:
    """``font`` scaled by ``factor``, whether it is sized in points or in pixels."""
    out = QFont(font)
    if out.pointSizeF() > 0:
        out.setPointSizeF(max(6.0, out.pointSizeF() * factor))
    elif out.pixelSize() > 0:
        out.setPixelSize(max(8, round(out.pixelSize() * factor)))
    return out


def _pen(color: QColor, width: float) -> QPen:
    pen = QPen(color, width)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    return pen


def _visual(opt: QStyleOptionViewItem, rect: QRectF) -> QRectF:
    """``rect`` laid out left-to-right, mirrored inside the row for right-to-left layouts."""
    if opt.direction != Qt.LayoutDirection.RightToLeft:
        return rect
    row = QRectF(opt.rect)
    return QRectF(row.left() + row.right() - rect.right(), rect.top(), rect.width(), rect.height())


def _background(opt: QStyleOptionViewItem, painter: QPainter) -> None:
    """The style's selection/hover/focus background, without the default text."""
    opt.text = ""
    opt.features &= ~QStyleOptionViewItem.ViewItemFeature.HasDisplay
    style = opt.widget.style() if opt.widget is not None else QApplication.style()
    style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)


@dataclass(frozen=True, slots=True)
class RowLayout:
    """Where a conversation row's parts go (left-to-right coordinates)."""

    title: QRectF
    badge: QRectF | None
    badge_text: str
    pin: QRectF | None
    pending: QRectF | None
    failed: QRectF | None


class ConversationDelegate(QStyledItemDelegate):
    """Paints a :class:`ConversationListModel` row; its title editor reports instead of writing:
    the model is read-only, so a committed edit emits ``renameCommitted(id, title)``."""

    renameCommitted = Signal(str, str)

    def row_layout(self, opt: QStyleOptionViewItem, index: Index) -> RowLayout:
        r = QRectF(opt.rect).adjusted(PAD, 0, -PAD, 0)
        fm = QFontMetricsF(opt.font)
        mark = round(fm.height() * 0.8)
        cy = r.center().y()
        right, left = r.right(), r.left()
        text = badge_text(int(index.data(ConversationListModel.UnreadRole) or 0))
        badge = None
        if text:
            bfm = QFontMetricsF(self.badge_font(opt.font))
            h = round(bfm.height() + 2)
            w = max(h, round(bfm.horizontalAdvance(text) + h * 0.8))
            badge = QRectF(right - w, cy - h / 2, w, h)
            right = badge.left() - GAP
        failed = pending = pin = None
        if index.data(ConversationListModel.FailedRole):
            failed = QRectF(right - mark, cy - mark / 2, mark, mark)
            right = failed.left() - GAP
        if index.data(ConversationListModel.PendingRole):
            pending = QRectF(right - mark, cy - mark / 2, mark, mark)
            right = pending.left() - GAP
        if index.data(ConversationListModel.PinnedRole):
            pin = QRectF(left, cy - mark / 2, mark, mark)
            left = pin.right() + GAP
        title = QRectF(left, r.top(), max(0.0, right - left), r.height())
        return RowLayout(title, badge, text, pin, pending, failed)

    @staticmethod
    def badge_font(font: QFont) -> QFont:
        out = scaled_font(font, 0.85)
        out.setBold(True)
        return out

    def title_font(self, opt: QStyleOptionViewItem, index: Index) -> QFont:
        font = QFont(opt.font)
        font.setBold(bool(index.data(ConversationListModel.UnreadRole)))
        font.setItalic(bool(index.data(ConversationListModel.PendingRole)))
        return font

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        title = opt.text
        _background(opt, painter)
        lay = self.row_layout(opt, index)
        pal, group = opt.palette, _group(opt)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        fg = pal.color(
            group, QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        )
        muted = fg if selected else pal.color(group, QPalette.ColorRole.PlaceholderText)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        font = self.title_font(opt, index)
        painter.setFont(font)
        painter.setPen(fg)
        elided = QFontMetricsF(font).elidedText(
            title, Qt.TextElideMode.ElideRight, lay.title.width()
        )
        align = Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft
        painter.drawText(_visual(opt, lay.title), int(align), elided)
        if lay.pin is not None:
            self._draw_pin(painter, _visual(opt, lay.pin), fg)
        if lay.pending is not None:
            self._draw_clock(painter, _visual(opt, lay.pending), muted)
        if lay.failed is not None:
            self._draw_failed(painter, _visual(opt, lay.failed), danger_color(pal))
        if lay.badge is not None:
            bg = pal.color(
                group, QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Link
            )
            ink = pal.color(
                group, QPalette.ColorRole.Highlight if selected else QPalette.ColorRole.Base
            )
            rect = _visual(opt, lay.badge)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(bg)
            painter.drawRoundedRect(rect, rect.height() / 2, rect.height() / 2)
            painter.setPen(ink)
            painter.setFont(self.badge_font(opt.font))
            painter.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), lay.badge_text)
        painter.restore()

    @staticmethod
    def _draw_pin(painter: QPainter, r: QRectF, color: QColor) -> None:
        head = QRectF(r.left() + r.width() * 0.2, r.top(), r.width() * 0.6, r.height() * 0.6)
        painter.setPen(_pen(color, max(1.0, r.width() / 8)))
        painter.drawLine(
            QPointF(r.center().x(), head.bottom()), QPointF(r.center().x(), r.bottom())
        )
        painter.setBrush(color)
        painter.drawEllipse(head)

    @staticmethod
    def _draw_clock(painter: QPainter, r: QRectF, color: QColor) -> None:
        pen = _pen(color, max(1.0, r.width() / 9))
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawEllipse(r.adjusted(0.5, 0.5, -0.5, -0.5))
        c = r.center()
        painter.drawLine(c, QPointF(c.x(), r.top() + r.height() * 0.25))
        painter.drawLine(c, QPointF(r.left() + r.width() * 0.72, c.y()))

    @staticmethod
    def _draw_failed(painter: QPainter, r: QRectF, color: QColor) -> None:
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(color)
        painter.drawEllipse(r)
        painter.setPen(_pen(QColor("white"), max(1.0, r.width() / 7)))
        x = r.center().x()
        painter.drawLine(QPointF(x, r.top() + r.height() * 0.25), QPointF(x, r.center().y() + 1))
        painter.drawPoint(QPointF(x, r.bottom() - r.height() * 0.22))

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:
        h = QFontMetricsF(option.font).height()
        return QSize(max(option.rect.width(), 120), max(ROW_HEIGHT, round(h + 2 * PAD)))

    # --- inline rename ---------------------------------------------------------------------------

    def createEditor(self, parent: QWidget, option: QStyleOptionViewItem, index: Index) -> QWidget:
        editor = QLineEdit(parent)
        editor.setAccessibleName("Conversation title")
        editor.setMaxLength(MAX_TITLE_CHARS)
        return editor

    def setEditorData(self, editor: QWidget, index: Index) -> None:
        assert isinstance(editor, QLineEdit)
        editor.setText(str(index.data(Qt.ItemDataRole.EditRole) or ""))
        editor.selectAll()

    def setModelData(self, editor: QWidget, model: QAbstractItemModel, index: Index) -> None:
        assert isinstance(editor, QLineEdit)
        title = editor.text().strip()
        cid = index.data(ConversationListModel.IdRole)
        if cid and title and title != index.data(Qt.ItemDataRole.EditRole):
            self.renameCommitted.emit(str(cid), title)

    def updateEditorGeometry(
        self, editor: QWidget, option: QStyleOptionViewItem, index: Index
    ) -> None:
        r = option.rect.adjusted(int(PAD / 2), 4, -int(PAD / 2), -4)
        editor.setGeometry(r)


# --- messages ------------------------------------------------------------------------------------


def message_time(ms: int, now: QDateTime | None = None) -> str:
    """Short local time for today's messages, short date and time otherwise."""
    dt = QDateTime.fromMSecsSinceEpoch(int(ms)).toLocalTime()
    now = now or QDateTime.currentDateTime()
    locale = QLocale()
    if dt.date() == now.date():
        return locale.toString(dt.time(), QLocale.FormatType.ShortFormat)
    return locale.toString(dt, QLocale.FormatType.ShortFormat)


class MessageDelegate(QStyledItemDelegate):
    """Author and time on one line, then the body wrapped to the view's width. Text layouts are
    cached per (message, width, font), so relayouts of long histories stay cheap."""

    CACHE = 2000

    def __init__(self, view: Any) -> None:
        super().__init__(view)
        self._view = view
        self._layouts: OrderedDict[tuple[Any, ...], QTextLayout] = OrderedDict()

    def _width(self) -> float:
        return max(60.0, self._view.viewport().width() - 2 * PAD)

    def _body(self, m: Any, font: QFont, width: float) -> QTextLayout:
        key = (m.id, m.body, width, font.key())
        layout = self._layouts.get(key)
        if layout is not None:
            self._layouts.move_to_end(key)
            return layout
        layout = QTextLayout(m.body.replace("\r\n", "\n").replace("\n", "\u2028"), font)
        text_option = QTextOption()
        text_option.setWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        layout.setTextOption(text_option)
        layout.beginLayout()
        y = 0.0
        while True:
            line = layout.createLine()
            if not line.isValid():
                break
            line.setLineWidth(width)
            line.setPosition(QPointF(0, y))
            y += line.height()
        layout.endLayout()
        self._layouts[key] = layout
        while len(self._layouts) > self.CACHE:
            self._layouts.popitem(last=False)
        return layout

    @staticmethod
    def _header_font(font: QFont) -> QFont:
        out = QFont(font)
        out.setBold(True)
        return out

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:
        m = index.data(MessageListModel.ViewRole)
        if m is None:
            return super().sizeHint(option, index)
        width = self._width()
        head = QFontMetricsF(self._header_font(option.font)).height()
        body = self._body(m, option.font, width).boundingRect().height()
        return QSize(round(width + 2 * PAD), round(head + body + 3 * GAP))

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        m = index.data(MessageListModel.ViewRole)
        if m is None:
            return
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        _background(opt, painter)
        pal, group = opt.palette, _group(opt)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        fg = pal.color(
            group, QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        )
        muted = fg if selected else pal.color(group, QPalette.ColorRole.PlaceholderText)
        r = QRectF(opt.rect).adjusted(PAD, GAP, -PAD, -GAP)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        head_font = self._header_font(opt.font)
        head_h = QFontMetricsF(head_font).height()
        x = r.left()
        x = self._text(painter, opt, head_font, fg, x, r.top(), head_h, m.author)
        small = scaled_font(opt.font, 0.85)
        x = self._text(
            painter, opt, small, muted, x + GAP, r.top(), head_h, message_time(m.created_at)
        )
        if m.failed:
            self._text(painter, opt, small, danger_color(pal), x + GAP, r.top(), head_h, "Not sent")
        elif m.pending:
            italic = QFont(small)
            italic.setItalic(True)
            self._text(painter, opt, italic, muted, x + GAP, r.top(), head_h, "Sending…")
        painter.setPen(fg)
        layout = self._body(m, opt.font, self._width())
        layout.draw(painter, QPointF(r.left(), r.top() + head_h + GAP))
        painter.restore()

    @staticmethod
    def _text(
        painter: QPainter,
        opt: QStyleOptionViewItem,
        font: QFont,
        color: QColor,
        x: float,
        y: float,
        h: float,
        text: str,
    ) -> float:
        """Draw one header run at ``x``; returns where the next one starts."""
        w = QFontMetricsF(font).horizontalAdvance(text)
        painter.setFont(font)
        painter.setPen(color)
        rect = _visual(opt, QRectF(x, y, w + 1, h))
        painter.drawText(
            rect, int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft), text
        )
        return x + w

    def clear_cache(self) -> None:
        self._layouts.clear()
