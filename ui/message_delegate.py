"""The message bubble, as in Telegram Desktop:

* consecutive messages of one author within 5 minutes share one header (author and time), with
  the author's avatar beside the first;
* my own messages sit on the right in a tinted bubble; other people's on the left;
* a day separator ("Today", "Yesterday", a weekday, a date) above the first message of a day;
* the body is escaped, then its http(s)/mailto runs become links (``ui.message_format``): a
  click, or Enter on the selected message, opens the link in the browser; nothing else a user
  typed ever renders as markup;
* long words wrap anywhere, so no message widens the view; emoji come in colour when a colour
  emoji font is installed (``ui.theme.ensure_emoji_font``).

Documents are cached per (message, width, font, link colour), so relayouts stay cheap.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, QSize, Qt, QUrl
from PySide6.QtGui import (
    QAbstractTextDocumentLayout,
    QColor,
    QDesktopServices,
    QFont,
    QFontMetricsF,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPalette,
    QTextDocument,
    QTextOption,
)
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem
from shiboken6 import isValid

from core.model import MessageView
from ui.message_format import clock, day_label, is_safe_link, linkify
from ui.models import MessageListModel
from ui.paint import PAD, Index, round_pen, scaled_font, visual
from ui.theme import Ink, avatar_color, ensure_emoji_font, initials, ink

AVATAR = 32.0
AV_GAP = 8.0
BPAD, BVPAD = 10.0, 6.0  # inside a bubble
GROUP_GAP, STACK_GAP = 10.0, 2.0  # above a group's first message; between messages of a group
MAX_BUBBLE = 620.0
RADIUS = 10.0
_HREF = re.compile(r'href="([^"]+)"')


def message_time(ms: int) -> str:
    """The short local time shown in a message header."""
    return clock(ms)


@dataclass(frozen=True, slots=True)
class Geometry:
    """Where one message row's parts go (left-to-right coordinates, inside the row)."""

    separator: QRectF | None
    separator_text: str
    avatar: QRectF | None
    bubble: QRectF
    header: QRectF | None
    body: QPointF
    footer: QRectF | None
    footer_text: str
    mine: bool
    height: float


class MessageDelegate(QStyledItemDelegate):
    """Paints :class:`MessageListModel` rows; ``me`` (the signed-in user) decides which are
    mine. Opens links (click, or Enter on the current message) through ``QDesktopServices``."""

    CACHE = 2000

    def __init__(self, view: Any) -> None:
        super().__init__(view)
        self._view = view
        self.me: str | None = None
        self._docs: OrderedDict[tuple[Any, ...], QTextDocument] = OrderedDict()
        self._sizes: OrderedDict[tuple[Any, ...], QSize] = OrderedDict()
        self.opened: list[str] = []  # links opened, newest last (for tests and diagnostics)
        ensure_emoji_font()
        view.setMouseTracking(True)
        self._viewport = view.viewport()
        self._viewport.installEventFilter(self)
        view.installEventFilter(self)

    # --- layout ----------------------------------------------------------------------------------

    def _width(self) -> float:
        return max(120.0, float(self._view.viewport().width()))

    @staticmethod
    def header_font(font: QFont) -> QFont:
        out = QFont(font)
        out.setBold(True)
        return out

    @staticmethod
    def small_font(font: QFont) -> QFont:
        return scaled_font(font, 0.85)

    def document(self, m: MessageView, font: QFont, width: float, link: QColor) -> QTextDocument:
        """The body laid out at ``width`` (cached)."""
        key = (m.id, m.body, round(width), font.key(), link.name())
        doc = self._docs.get(key)
        if doc is not None:
            self._docs.move_to_end(key)
            return doc
        doc = QTextDocument()
        doc.setDefaultFont(font)
        doc.setDocumentMargin(0)
        option = QTextOption()
        option.setWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        doc.setDefaultTextOption(option)
        doc.setHtml(linkify(m.body, link.name()))
        doc.setTextWidth(width)
        self._docs[key] = doc
        while len(self._docs) > self.CACHE:
            self._docs.popitem(last=False)
        return doc

    def geometry(self, opt: QStyleOptionViewItem, index: Index) -> tuple[Geometry, QTextDocument]:
        m: MessageView = index.data(MessageListModel.ViewRole)
        colors = ink(opt.palette)
        mine = self.me is not None and m.author == self.me
        head = bool(index.data(MessageListModel.GroupStartRole))
        day = bool(index.data(MessageListModel.DayStartRole))
        top = float(opt.rect.top())
        width = self._width()
        small = QFontMetricsF(self.small_font(opt.font))
        separator, sep_text = None, ""
        y = top
        if day:
            sep_text = day_label(m.created_at)
            w = small.horizontalAdvance(sep_text) + 24
            h = small.height() + 8
            separator = QRectF((width - w) / 2, y + 10, w, h)
            y = separator.bottom() + 4
        y += GROUP_GAP if head else STACK_GAP
        inset = PAD + AVATAR + AV_GAP
        max_w = max(60.0, min(width - inset - PAD, MAX_BUBBLE))
        doc = self.document(m, opt.font, max_w - 2 * BPAD, colors.link)
        content = doc.idealWidth()
        header = None
        inner_y = y + BVPAD
        if head:
            hf = QFontMetricsF(self.header_font(opt.font))
            hw = hf.horizontalAdvance(self.author_text(m, mine)) + 8
            hw += small.horizontalAdvance(message_time(m.created_at))
            header = QRectF(0, inner_y, hw, hf.height())
            content = max(content, hw)
            inner_y += hf.height() + 2
        body_y = inner_y
        inner_y += doc.size().height()
        footer, footer_text = None, ""
        if m.failed or m.pending or m.edited:  # edited: "Saving…" until the server has it
            footer_text = (
                "Not sent"
                if m.failed
                else "Sending…"
                if m.pending
                else "Saving…"
                if m.edit_pending
                else "edited"
            )
            fw = small.horizontalAdvance(footer_text) + 1
            footer = QRectF(0, inner_y + 2, fw, small.height())
            content = max(content, fw)
            inner_y += small.height() + 2
        bw = min(max_w, content + 2 * BPAD + 1)
        bx = width - PAD - bw if mine else inset
        bubble = QRectF(bx, y, bw, inner_y + BVPAD - y)
        if header is not None:
            header.moveLeft(bx + BPAD)
        if footer is not None:
            footer.moveLeft(bubble.right() - BPAD - footer.width())
        avatar = QRectF(PAD, y, AVATAR, AVATAR) if head and not mine else None
        height = bubble.bottom() - top
        if avatar is not None:
            height = max(height, avatar.bottom() - top)
        geo = Geometry(
            separator,
            sep_text,
            avatar,
            bubble,
            header,
            QPointF(bx + BPAD, body_y),
            footer,
            footer_text,
            mine,
            height,
        )
        return geo, doc

    @staticmethod
    def author_text(m: MessageView, mine: bool) -> str:
        return "You" if mine else m.author

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:
        m = index.data(MessageListModel.ViewRole)
        if m is None:
            return super().sizeHint(option, index)
        width = round(self._width())
        key = (
            m,
            index.data(MessageListModel.GroupStartRole),
            index.data(MessageListModel.DayStartRole),
            width,
            option.font.key(),
            self.me,
        )
        size = self._sizes.get(key)
        if size is None:  # QListView asks several times per row and relayout: computed once
            opt = QStyleOptionViewItem(option)
            opt.rect.moveTop(0)
            geo, _doc = self.geometry(opt, index)
            size = self._sizes[key] = QSize(width, round(geo.height + 1))
            while len(self._sizes) > self.CACHE:
                self._sizes.popitem(last=False)
        return QSize(size)

    # --- painting --------------------------------------------------------------------------------

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        m: MessageView | None = index.data(MessageListModel.ViewRole)
        if m is None:
            return
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        colors = ink(opt.palette)
        geo, doc = self.geometry(opt, index)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        small = self.small_font(opt.font)
        if geo.separator is not None:
            sep = visual(opt, geo.separator)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(colors.separator)
            painter.drawRoundedRect(sep, sep.height() / 2, sep.height() / 2)
            painter.setPen(colors.on_separator)
            painter.setFont(small)
            painter.drawText(sep, int(Qt.AlignmentFlag.AlignCenter), geo.separator_text)
        if geo.avatar is not None:
            self._avatar(painter, visual(opt, geo.avatar), m.author, opt.font)
        bubble = visual(opt, geo.bubble)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colors.bubble_own if geo.mine else colors.bubble)
        painter.drawRoundedRect(bubble, RADIUS, RADIUS)
        if opt.state & QStyle.StateFlag.State_Selected:
            painter.setPen(round_pen(colors.focus, 2.0))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(bubble.adjusted(-2, -2, 2, 2), RADIUS + 2, RADIUS + 2)
        muted = colors.muted_own if geo.mine else colors.muted
        if geo.header is not None:
            self._header(painter, opt, geo, m, colors, muted)
        self._body(painter, opt, geo, doc, colors.text)
        if geo.footer is not None:
            font = QFont(small)
            font.setItalic((m.pending or m.edit_pending) and not m.failed)
            painter.setFont(font)
            painter.setPen(colors.danger if m.failed else muted)
            painter.drawText(
                visual(opt, geo.footer), int(Qt.AlignmentFlag.AlignVCenter), geo.footer_text
            )
        painter.restore()

    def _header(
        self,
        painter: QPainter,
        opt: QStyleOptionViewItem,
        geo: Geometry,
        m: MessageView,
        colors: Ink,
        muted: QColor,
    ) -> None:
        assert geo.header is not None
        hfont = self.header_font(opt.font)
        name = self.author_text(m, geo.mine)
        nw = QFontMetricsF(hfont).horizontalAdvance(name) + 1
        r = geo.header
        painter.setFont(hfont)
        painter.setPen(colors.text if geo.mine else colors.author(m.author))
        align = int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft)
        painter.drawText(visual(opt, QRectF(r.left(), r.top(), nw, r.height())), align, name)
        painter.setFont(self.small_font(opt.font))
        painter.setPen(muted)
        when = message_time(m.created_at)
        tw = QFontMetricsF(self.small_font(opt.font)).horizontalAdvance(when) + 1
        painter.drawText(
            visual(opt, QRectF(r.left() + nw + 7, r.top(), tw, r.height())), align, when
        )

    def _body(
        self,
        painter: QPainter,
        opt: QStyleOptionViewItem,
        geo: Geometry,
        doc: QTextDocument,
        color: QColor,
    ) -> None:
        origin = geo.body
        if opt.direction == Qt.LayoutDirection.RightToLeft:
            w = doc.textWidth()
            origin = visual(opt, QRectF(origin.x(), origin.y(), w, 1)).topLeft()
        painter.save()
        painter.translate(origin)
        ctx = QAbstractTextDocumentLayout.PaintContext()
        palette = QPalette(opt.palette)
        palette.setColor(QPalette.ColorRole.Text, color)
        ctx.palette = palette
        doc.documentLayout().draw(painter, ctx)
        painter.restore()

    @staticmethod
    def _avatar(painter: QPainter, r: QRectF, author: str, base: QFont) -> None:
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(avatar_color(author))
        painter.drawEllipse(r)
        font = QFont(base)
        font.setBold(True)
        font.setPixelSize(max(8, round(r.height() * 0.4)))
        painter.setFont(font)
        painter.setPen(QColor("#ffffff"))
        painter.drawText(r, int(Qt.AlignmentFlag.AlignCenter), initials(author))

    # --- links -----------------------------------------------------------------------------------

    def option_for(self, index: Index) -> QStyleOptionViewItem:
        opt = QStyleOptionViewItem()
        opt.rect = self._view.visualRect(index)
        opt.font = self._view.font()
        opt.palette = self._view.palette()
        opt.direction = self._view.layoutDirection()
        return opt

    def link_at(self, pos: QPointF) -> str | None:
        """The link under viewport position ``pos``, if any."""
        index = self._view.indexAt(pos.toPoint())
        if not index.isValid() or index.data(MessageListModel.ViewRole) is None:
            return None
        opt = self.option_for(index)
        geo, doc = self.geometry(opt, index)
        origin = geo.body
        if opt.direction == Qt.LayoutDirection.RightToLeft:
            origin = visual(opt, QRectF(origin.x(), origin.y(), doc.textWidth(), 1)).topLeft()
        href = doc.documentLayout().anchorAt(pos - origin)
        return href or None

    def links(self, index: Index) -> list[str]:
        """The links of the message at ``index``, in order."""
        m = index.data(MessageListModel.ViewRole)
        if m is None:
            return []
        return _HREF.findall(linkify(m.body))

    def open_link(self, href: str) -> bool:
        """Open ``href`` in the browser or mail client: http(s) and mailto only."""
        if not is_safe_link(href):
            return False
        self.opened.append(href)
        return QDesktopServices.openUrl(QUrl(href.replace("&amp;", "&")))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is not self._view and watched is not self._viewport:  # an editor, if any
            return super().eventFilter(watched, event)
        if not isValid(self._view):  # being destroyed
            return False
        kind = event.type()
        if watched is self._viewport:
            if kind == QEvent.Type.MouseMove and isinstance(event, QMouseEvent):
                link = self.link_at(event.position())
                shape = Qt.CursorShape.PointingHandCursor if link else Qt.CursorShape.ArrowCursor
                self._viewport.setCursor(shape)
            elif kind == QEvent.Type.MouseButtonRelease and isinstance(event, QMouseEvent):
                if event.button() == Qt.MouseButton.LeftButton:
                    link = self.link_at(event.position())
                    if link:
                        self.open_link(link)
        elif watched is self._view and kind == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not event.modifiers():
                found = self.links(self._view.currentIndex())
                if found:
                    self.open_link(found[0])
                    return True
        return False  # not QStyledItemDelegate's: it would take the view for an editor

    def clear_cache(self) -> None:
        self._docs.clear()
        self._sizes.clear()
