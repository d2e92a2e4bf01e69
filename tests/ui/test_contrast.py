"""WCAG AA in both themes: 4.5:1 for text, 3:1 for icons, markers and control outlines.

Checked twice: every colour pair the app's own painting uses (``ui.theme.pairs``, the one place
delegates and stylesheets take colours from) and the palette's; and the pixels actually painted —
list rows (plain, hovered, selected), message bubbles, an unchecked check box and the dialog
Close icon — measured against their local background.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import QDateTime, QRect, QRectF, QSize
from PySide6.QtGui import QColor, QImage, QPainter, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QDialogButtonBox,
    QStyle,
    QStyleOptionButton,
    QStyleOptionViewItem,
    QWidget,
)

from core.model import ConversationView, LastMessage, MessageView
from ui.conversation_list import ConversationListView
from ui.icons import STATE_COLORS, state_color
from ui.message_list import MessageListView
from ui.models import ConversationListModel
from ui.theme import apply_theme, contrast, ink, pairs, palette_for, palette_pairs

THEMES = ("light", "dark")


@pytest.fixture
def themed(qapp) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    def use(theme: str) -> QApplication:
        apply_theme(qapp, theme)
        return qapp

    yield use
    apply_theme(qapp, "system")


def background(image: QImage, rect: QRect) -> QColor:
    """The most common colour in ``rect``: what the foreground is painted on."""
    counts = Counter(
        image.pixel(x, y)
        for x in range(rect.left(), rect.right() + 1)
        for y in range(rect.top(), rect.bottom() + 1)
    )
    return QColor.fromRgb(counts.most_common(1)[0][0])


def ink_contrast(image: QImage, rect: QRect, bg: QColor | None = None) -> float:
    """The contrast of the most contrasting pixel in ``rect`` against its background."""
    rect = rect.intersected(image.rect())
    bg = bg or background(image, rect)
    return max(
        contrast(QColor.fromRgb(image.pixel(x, y)), bg)
        for x in range(rect.left(), rect.right() + 1)
        for y in range(rect.top(), rect.bottom() + 1)
    )


def scaled(r: QRectF, dpr: float) -> QRect:
    return QRectF(r.left() * dpr, r.top() * dpr, r.width() * dpr, r.height() * dpr).toRect()


@pytest.mark.parametrize("theme", THEMES)
def test_every_pair_the_app_paints_meets_aa(theme: str) -> None:
    palette = palette_for(theme)
    failing = [
        f"{what}: {fg.name()} on {bg.name()} = {contrast(fg, bg):.2f} < {need}"
        for what, fg, bg, need in pairs(ink(palette)) + palette_pairs(palette)
        if contrast(fg, bg) < need
    ]
    assert not failing, failing


def row_view(qtbot, views: list[ConversationView]) -> ConversationListView:  # type: ignore[no-untyped-def]
    lv = ConversationListView(ConversationListModel(views))
    qtbot.addWidget(lv)
    lv.resize(320, 300)
    lv.show()
    return lv


def paint_row(lv: ConversationListView, row: int, state: QStyle.StateFlag) -> QImage:
    index = lv.model().index(row, 0)
    opt = QStyleOptionViewItem()
    opt.initFrom(lv)
    rect = lv.visualRect(index)
    opt.rect = rect.translated(0, -rect.top())
    opt.state = QStyle.StateFlag.State_Enabled | QStyle.StateFlag.State_Active | state
    image = QImage(opt.rect.size() * 2, QImage.Format.Format_RGB32)
    image.setDevicePixelRatio(2)
    image.fill(lv.palette().color(QPalette.ColorRole.Base))
    painter = QPainter(image)
    lv.delegate.paint(painter, opt, index)
    painter.end()
    return image


@pytest.mark.parametrize("theme", THEMES)
def test_painted_list_rows_meet_aa(theme: str, themed, qtbot) -> None:  # type: ignore[no-untyped-def]
    themed(theme)
    last = LastMessage("ben", "Build is green", QDateTime.currentMSecsSinceEpoch())
    view = ConversationView(
        "c1", "Release 2.4", True, "ana", ("ana", "ben"), 1, 0, 0, 3, 0, 7, True, True, last=last
    )
    lv = row_view(qtbot, [view])
    index = lv.model().index(0, 0)
    opt = QStyleOptionViewItem()
    opt.initFrom(lv)
    rect = lv.visualRect(index)
    opt.rect = rect.translated(0, -rect.top())
    lay = lv.delegate.row_layout(opt, index)
    states = {
        "plain": QStyle.StateFlag.State_None,
        "hovered": QStyle.StateFlag.State_MouseOver,
        "selected": QStyle.StateFlag.State_Selected,
    }
    for name, state in states.items():
        image = paint_row(lv, 0, state)
        row_bg = QColor.fromRgb(image.pixel(2, 2))
        parts: list[tuple[str, QRectF, float, QColor | None]] = [
            ("title", lay.title, 4.5, row_bg),
            ("preview", lay.preview, 4.5, row_bg),
            ("time", lay.time, 4.5, row_bg),
            ("badge", lay.badge, 3.0, row_bg),  # the pill against the row
            ("badge text", lay.badge.adjusted(3, 3, -3, -3), 4.5, None),  # against the pill
            ("pin", lay.pin, 3.0, row_bg),
            ("pending", lay.pending, 3.0, row_bg),
            ("failed", lay.failed, 3.0, row_bg),
            ("initials", lay.avatar.adjusted(8, 8, -8, -8), 4.5, None),
        ]
        for part, r, need, bg in parts:
            got = ink_contrast(image, scaled(r, 2), bg)
            assert got >= need, f"{theme}, {name} row: {part} {got:.2f} < {need}"


@pytest.mark.parametrize("theme", THEMES)
def test_painted_messages_meet_aa(theme: str, themed, qtbot) -> None:  # type: ignore[no-untyped-def]
    themed(theme)
    now = QDateTime.currentMSecsSinceEpoch()
    view = MessageListView()
    view.delegate.me = "ana"
    qtbot.addWidget(view)
    view.resize(480, 500)
    view.set_messages(
        [
            MessageView("m1", "c", 1, "ben", "see https://example.com", now),
            MessageView("m2", "c", None, "ana", "on it", now + 1, pending=True),
        ]
    )
    view.show()
    qtbot.waitExposed(view)
    image = view.viewport().grab().toImage()
    dpr = image.devicePixelRatio()
    for row in (0, 1):
        index = view.model().index(row, 0)
        geo, _doc = view.delegate.geometry(view.delegate.option_for(index), index)
        inner = scaled(geo.bubble.adjusted(3, 3, -3, -3), dpr)
        fill = background(image, inner)  # the bubble
        assert fill.name() in (
            ink(view.palette()).bubble.name(),
            ink(view.palette()).bubble_own.name(),
        )
        assert ink_contrast(image, inner, fill) >= 4.5, f"{theme}: message {row} text"
        if geo.header is not None:
            assert ink_contrast(image, scaled(geo.header, dpr), fill) >= 4.5
        if geo.footer is not None:
            assert ink_contrast(image, scaled(geo.footer, dpr), fill) >= 4.5
        if geo.separator is not None:
            assert ink_contrast(image, scaled(geo.separator.adjusted(3, 2, -3, -2), dpr)) >= 4.5


def indicator_contrast(widget: QWidget, rect: QRect) -> float:
    image = widget.grab().toImage()
    dpr = image.devicePixelRatio()
    r = QRectF(rect).adjusted(-0.5, -0.5, 0.5, 0.5)
    window = widget.palette().color(QPalette.ColorRole.Window)
    return ink_contrast(image, scaled(r, dpr), window)


@pytest.mark.parametrize("theme", THEMES)
def test_unchecked_check_box_is_visible(theme: str, themed, qtbot) -> None:  # type: ignore[no-untyped-def]
    themed(theme)
    box = QCheckBox("Show a notice when a conversation changes elsewhere")
    box.setChecked(False)
    qtbot.addWidget(box)
    box.show()
    qtbot.waitExposed(box)
    opt = QStyleOptionButton()
    opt.initFrom(box)
    rect = box.style().subElementRect(QStyle.SubElement.SE_CheckBoxIndicator, opt, box)
    assert indicator_contrast(box, rect) >= 3.0


@pytest.mark.parametrize("theme", THEMES)
def test_dialog_close_icon_is_visible(theme: str, themed, qtbot) -> None:  # type: ignore[no-untyped-def]
    app = themed(theme)
    icon = app.style().standardIcon(QStyle.StandardPixmap.SP_DialogCloseButton)
    face = app.palette().color(QPalette.ColorRole.Button)
    image = QImage(QSize(32, 32), QImage.Format.Format_RGB32)
    image.fill(face)
    painter = QPainter(image)
    icon.paint(painter, QRect(8, 8, 16, 16))  # on a button's face, as a button paints it
    painter.end()
    assert ink_contrast(image, image.rect(), face) >= 3.0
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
    qtbot.addWidget(buttons)
    close = buttons.button(QDialogButtonBox.StandardButton.Close)
    if not close.icon().isNull():  # where the platform puts icons on dialog buttons
        pix = close.icon().pixmap(16).toImage()
        opaque = [
            QColor.fromRgba(pix.pixel(x, y))
            for x in range(pix.width())
            for y in range(pix.height())
            if QColor.fromRgba(pix.pixel(x, y)).alpha() > 200
        ]
        assert opaque and max(contrast(c, face) for c in opaque) >= 3.0


@pytest.mark.parametrize("theme", THEMES)
def test_sync_state_glyphs_stand_out_from_the_status_bar(theme: str) -> None:
    window = palette_for(theme).color(QPalette.ColorRole.Window)
    for state in STATE_COLORS:
        color = state_color(state, dark=theme == "dark")
        assert contrast(color, window) >= 3.0, f"{theme} {state}: {color.name()}"
