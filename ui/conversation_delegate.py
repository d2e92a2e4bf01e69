"""The conversation list row, as in Telegram or Element:

    [avatar]  Title (bold when unread) …        [pin][pending][failed]  14:05
              You: the first line of the last message …                 [ 3 ]

The avatar shows the title's initials on a colour stable per conversation id. Every colour
comes from :func:`ui.theme.ink` (checked against WCAG AA in tests/ui/test_contrast.py); the row
is mirrored for right-to-left layouts.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QAbstractItemModel, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPalette, QPen
from PySide6.QtWidgets import QLineEdit, QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from core.model import ConversationView
from core.protocol import MAX_TITLE_CHARS
from ui.message_format import list_time
from ui.models import ConversationListModel
from ui.paint import PAD, Index, color_group, round_pen, scaled_font, visual
from ui.theme import Ink, avatar_color, ensure_emoji_font, initials, ink

GAP = 6.0
VPAD = 8.0
AVATAR = 42.0
NO_MESSAGES = "No messages yet"
COMPACT = 64.0  # px of room for the text column below which a row shows only its avatar


def badge_text(unread: int) -> str:
    """The unread pill's text: hidden at 0, the count up to 99, then "99+"."""
    if unread <= 0:
        return ""
    return "99+" if unread > 99 else str(unread)


def preview_text(view: ConversationView) -> tuple[str, str]:
    """(author part, text part) of a row's second line: ("You: ", "…") for my own messages."""
    last = view.last
    if last is None:
        return "", NO_MESSAGES
    who = "You" if last.mine else last.author
    return f"{who}: ", last.text


@dataclass(frozen=True, slots=True)
class RowLayout:
    """Where a conversation row's parts go (left-to-right coordinates)."""

    avatar: QRectF
    title: QRectF
    time: QRectF
    time_text: str
    preview: QRectF
    badge: QRectF | None
    badge_text: str
    pin: QRectF | None
    pending: QRectF | None
    failed: QRectF | None


class ConversationDelegate(QStyledItemDelegate):
    """Paints a :class:`ConversationListModel` row; its title editor reports instead of writing:
    the model is read-only, so a committed edit emits ``renameCommitted(id, title)``."""

    renameCommitted = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        ensure_emoji_font()

    @staticmethod
    def small_font(font: QFont) -> QFont:
        return scaled_font(font, 0.9)

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

    def row_layout(self, opt: QStyleOptionViewItem, index: Index) -> RowLayout:
        view: ConversationView | None = index.data(ConversationListModel.ViewRole)
        r = QRectF(opt.rect).adjusted(PAD, VPAD, -PAD, -VPAD)
        side = min(AVATAR, r.height())
        avatar = QRectF(r.left(), r.center().y() - side / 2, side, side)
        left, right = avatar.right() + GAP + 4, r.right()
        h1 = QFontMetricsF(self.title_font(opt, index)).height()
        small = QFontMetricsF(self.small_font(opt.font))
        h2 = small.height()
        top = r.center().y() - (h1 + 3 + h2) / 2
        line2 = top + h1 + 3
        when = view.last.created_at if view is not None and view.last else None
        if when is None and view is not None:
            when = view.updated_at
        time_text = list_time(when) if when else ""
        tw = small.horizontalAdvance(time_text) + 1 if time_text else 0.0
        time = QRectF(right - tw, top, tw, h1)
        right1 = time.left() - (GAP if tw else 0)
        mark = round(h2 * 0.85)
        cy = top + h1 / 2
        failed = pending = pin = None
        if index.data(ConversationListModel.FailedRole):
            failed = QRectF(right1 - mark, cy - mark / 2, mark, mark)
            right1 = failed.left() - GAP
        if index.data(ConversationListModel.PendingRole):
            pending = QRectF(right1 - mark, cy - mark / 2, mark, mark)
            right1 = pending.left() - GAP
        if index.data(ConversationListModel.PinnedRole):
            pin = QRectF(right1 - mark, cy - mark / 2, mark, mark)
            right1 = pin.left() - GAP
        title = QRectF(left, top, max(0.0, right1 - left), h1)
        text = badge_text(int(index.data(ConversationListModel.UnreadRole) or 0))
        badge = None
        right2 = right
        if text:
            bfm = QFontMetricsF(self.badge_font(opt.font))
            h = round(bfm.height() + 2)
            w = max(h, round(bfm.horizontalAdvance(text) + h * 0.8))
            badge = QRectF(right - w, line2 + h2 / 2 - h / 2, w, h)
            right2 = badge.left() - GAP
        preview = QRectF(left, line2, max(0.0, right2 - left), h2)
        if right - left < COMPACT:  # a narrow list: avatars only, the badge on the avatar
            return self._compact(avatar, text, badge, failed)
        return RowLayout(avatar, title, time, time_text, preview, badge, text, pin, pending, failed)

    @staticmethod
    def _compact(
        avatar: QRectF, text: str, badge: QRectF | None, failed: QRectF | None
    ) -> RowLayout:
        """The row of a list too narrow for text, as Telegram draws it: the avatar, with the
        unread badge on its top-right corner and the failed marker on its bottom-right one."""
        none = QRectF(avatar.right(), avatar.top(), 0, 0)
        if badge is not None:
            badge = QRectF(badge)
            badge.moveTopRight(QPointF(avatar.right() + 4, avatar.top() - 4))
        if failed is not None:
            failed = QRectF(failed)
            failed.moveBottomRight(avatar.bottomRight())
        return RowLayout(avatar, none, none, "", none, badge, text, None, None, failed)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        view: ConversationView | None = index.data(ConversationListModel.ViewRole)
        title = opt.text
        lay = self.row_layout(opt, index)
        pal, group = opt.palette, color_group(opt)
        colors = ink(pal)
        state = opt.state
        selected = bool(state & QStyle.StateFlag.State_Selected)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        row = QRectF(opt.rect)
        if selected:
            painter.fillRect(row, pal.color(group, QPalette.ColorRole.Highlight))
        elif state & QStyle.StateFlag.State_MouseOver:
            painter.fillRect(row, colors.hover)
        if state & QStyle.StateFlag.State_HasFocus and not selected:
            painter.setPen(round_pen(colors.focus, 2.0))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(row.adjusted(1.5, 1.5, -1.5, -1.5), 4, 4)
        on_hl = pal.color(group, QPalette.ColorRole.HighlightedText)
        fg = on_hl if selected else colors.text
        muted = on_hl if selected else colors.muted
        self._draw_avatar(painter, visual(opt, lay.avatar), view.id if view else title, title, opt)
        font = self.title_font(opt, index)
        self._text(painter, opt, font, fg, lay.title, title)
        small = self.small_font(opt.font)
        if lay.time_text:
            self._text(painter, opt, small, muted, lay.time, lay.time_text)
        who, text = preview_text(view) if view is not None else ("", "")
        if who:
            who_w = min(QFontMetricsF(small).horizontalAdvance(who), lay.preview.width())
            self._text(painter, opt, small, fg, QRectF(lay.preview).adjusted(0, 0, 0, 0), who)
            rest = QRectF(lay.preview).adjusted(who_w, 0, 0, 0)
        else:
            rest = lay.preview
            small = QFont(small)
            small.setItalic(True)
        self._text(painter, opt, small, muted, rest, text)
        if lay.pin is not None:
            self._draw_pin(painter, visual(opt, lay.pin), muted)
        if lay.pending is not None:
            self._draw_clock(painter, visual(opt, lay.pending), muted)
        if lay.failed is not None:
            disc, mark = (on_hl, pal.color(group, QPalette.ColorRole.Highlight))
            if not selected:
                disc, mark = colors.danger, colors.on_danger
            self._draw_failed(painter, visual(opt, lay.failed), disc, mark)
        if lay.badge is not None:
            self._draw_badge(painter, opt, lay, colors, selected, group)
        painter.restore()

    def _draw_badge(
        self,
        painter: QPainter,
        opt: QStyleOptionViewItem,
        lay: RowLayout,
        colors: Ink,
        selected: bool,
        group: QPalette.ColorGroup,
    ) -> None:
        assert lay.badge is not None
        bg, fg = colors.accent, colors.on_accent
        if selected:
            bg = opt.palette.color(group, QPalette.ColorRole.HighlightedText)
            fg = opt.palette.color(group, QPalette.ColorRole.Highlight)
        rect = visual(opt, lay.badge)
        ring = opt.palette.color(group, QPalette.ColorRole.Highlight) if selected else colors.base
        if opt.state & QStyle.StateFlag.State_MouseOver and not selected:
            ring = colors.hover
        painter.setPen(QPen(ring, 2.0))  # sets it off from an avatar it overlaps (narrow list)
        painter.setBrush(bg)
        painter.drawRoundedRect(rect, rect.height() / 2, rect.height() / 2)
        painter.setPen(fg)
        painter.setFont(self.badge_font(opt.font))
        painter.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), lay.badge_text)

    @staticmethod
    def _text(
        painter: QPainter,
        opt: QStyleOptionViewItem,
        font: QFont,
        color: QColor,
        rect: QRectF,
        text: str,
    ) -> None:
        """One line of ``text`` in ``rect``, elided with "…"."""
        if rect.width() <= 0:
            return
        painter.setFont(font)
        painter.setPen(color)
        elided = QFontMetricsF(font).elidedText(text, Qt.TextElideMode.ElideRight, rect.width())
        align = Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeading
        painter.drawText(visual(opt, rect), int(align), elided)

    @staticmethod
    def _draw_avatar(
        painter: QPainter, r: QRectF, key: str, title: str, opt: QStyleOptionViewItem
    ) -> None:
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(avatar_color(key))
        painter.drawEllipse(r)
        font = QFont(opt.font)
        font.setBold(True)
        font.setPixelSize(max(8, round(r.height() * 0.38)))
        painter.setFont(font)
        painter.setPen(QColor("#ffffff"))
        painter.drawText(r, int(Qt.AlignmentFlag.AlignCenter), initials(title))

    @staticmethod
    def _draw_pin(painter: QPainter, r: QRectF, color: QColor) -> None:
        head = QRectF(r.left() + r.width() * 0.2, r.top(), r.width() * 0.6, r.height() * 0.6)
        painter.setPen(round_pen(color, max(1.5, r.width() / 7)))
        painter.drawLine(
            QPointF(r.center().x(), head.bottom()), QPointF(r.center().x(), r.bottom())
        )
        painter.setBrush(color)
        painter.drawEllipse(head)

    @staticmethod
    def _draw_clock(painter: QPainter, r: QRectF, color: QColor) -> None:
        painter.setPen(round_pen(color, max(1.5, r.width() / 8)))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawEllipse(r.adjusted(0.75, 0.75, -0.75, -0.75))
        c = r.center()
        painter.drawLine(c, QPointF(c.x(), r.top() + r.height() * 0.25))
        painter.drawLine(c, QPointF(r.left() + r.width() * 0.72, c.y()))

    @staticmethod
    def _draw_failed(painter: QPainter, r: QRectF, disc: QColor, mark: QColor) -> None:
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(disc)
        painter.drawEllipse(r)
        painter.setPen(round_pen(mark, max(1.5, r.width() / 6)))
        x = r.center().x()
        painter.drawLine(QPointF(x, r.top() + r.height() * 0.25), QPointF(x, r.center().y() + 1))
        painter.drawPoint(QPointF(x, r.bottom() - r.height() * 0.22))

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:
        h1 = QFontMetricsF(option.font).height()
        h2 = QFontMetricsF(self.small_font(option.font)).height()
        inner = max(AVATAR, h1 + 3 + h2)
        return QSize(max(option.rect.width(), 120), round(inner + 2 * VPAD))

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
        r = option.rect
        left = round(PAD + AVATAR + GAP)
        h = min(r.height() - 4, max(editor.sizeHint().height(), 24))
        editor.setGeometry(r.left() + left, r.center().y() - h // 2, r.width() - left - 4, h)
