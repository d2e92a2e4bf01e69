"""Empty states that say what to do, drawn in an empty item view's viewport (a headline and a
hint, centred and wrapped), as in Telegram or Slack.

The texts are constants here so tests, docs and views agree on them.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QFont, QFontMetricsF, QPainter
from PySide6.QtWidgets import QAbstractItemView

from ui.paint import scaled_font
from ui.theme import ink

NO_CONVERSATIONS = ("No conversations yet", "Start a conversation with Ctrl+N")
NO_SELECTION = ("No conversation selected", "Choose one from the list, or start one with Ctrl+N")
NO_MESSAGES = ("No messages yet", "Say hello — type below and press Enter")

Texts = tuple[str, str]


def paint_empty_state(view: QAbstractItemView, texts: Texts | None) -> None:
    """If ``view``'s model has no rows, draw ``texts`` (headline, hint) in its viewport."""
    model = view.model()
    if texts is None or model is None or model.rowCount() > 0:
        return
    viewport = view.viewport()
    colors = ink(view.palette())
    area = QRectF(viewport.rect()).adjusted(16, 16, -16, -16)
    if area.width() <= 0 or area.height() <= 0:
        return
    head_font = scaled_font(view.font(), 1.15)
    head_font.setBold(True)
    hint_font = QFont(view.font())
    flags = int(Qt.AlignmentFlag.AlignHCenter | Qt.TextFlag.TextWordWrap)
    head_h = QFontMetricsF(head_font).boundingRect(area, flags, texts[0]).height()
    hint_h = QFontMetricsF(hint_font).boundingRect(area, flags, texts[1]).height()
    top = area.top() + max(0.0, (area.height() - head_h - 6 - hint_h) / 2)
    painter = QPainter(viewport)
    painter.setFont(head_font)
    painter.setPen(colors.text)
    painter.drawText(QRectF(area.left(), top, area.width(), head_h), flags, texts[0])
    painter.setFont(hint_font)
    painter.setPen(colors.muted)
    painter.drawText(QRectF(area.left(), top + head_h + 6, area.width(), hint_h), flags, texts[1])
    painter.end()
