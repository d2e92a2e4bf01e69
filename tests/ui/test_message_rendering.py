"""The message view as in Telegram Desktop: grouped headers, my messages on the right in a tinted
bubble, day separators, safe clickable links, colour emoji, long words that wrap, and empty
states that say what to do."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import QDate, QDateTime, QObject, QPoint, QPointF, Qt, QTime, QUrl, Slot
from PySide6.QtGui import QDesktopServices, QImage, QPainter, QPalette
from PySide6.QtWidgets import QStyle, QStyleOptionViewItem

from core.model import MessageView
from ui.elided_label import ElidedLabel
from ui.empty_state import NO_MESSAGES, NO_SELECTION
from ui.message_delegate import PAD, Geometry
from ui.message_format import day_label, is_safe_link, linkify, starts_group
from ui.message_list import MessageListView
from ui.models import MessageListModel
from ui.theme import ensure_emoji_font, ink

MIN = 60_000


def at(day: QDate, h: int, m: int) -> int:
    return QDateTime(day, QTime(h, m)).toMSecsSinceEpoch()


def msg(i: int, author: str, body: str, ms: int, **kw: Any) -> MessageView:
    return MessageView(f"m{i}", "c1", i, author, body, ms, **kw)


def make_view(qtbot, messages: list[MessageView], width: int = 480) -> MessageListView:  # type: ignore[no-untyped-def]
    view = MessageListView()
    view.delegate.me = "ana"
    qtbot.addWidget(view)
    view.resize(width, 600)
    view.set_messages(messages)
    view.show()
    qtbot.waitExposed(view)
    return view


def geometry(view: MessageListView, row: int) -> Geometry:
    index = view.model().index(row, 0)
    return view.delegate.geometry(view.delegate.option_for(index), index)[0]


class Browser(QObject):
    """Stands in for the browser: ``QDesktopServices`` hands it the URLs it would open."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.urls.append(url.toString())


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser()
    for scheme in ("http", "https", "mailto", "javascript"):
        QDesktopServices.setUrlHandler(scheme, b, "open")
    yield b
    for scheme in ("http", "https", "mailto", "javascript"):
        QDesktopServices.unsetUrlHandler(scheme)


def test_linkify_escapes_first_and_links_only_http_and_mailto() -> None:
    html = linkify('<b>x</b> <img src="https://e.vil/p.png"> javascript:alert(1)')
    assert "<b>" not in html and "<img" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert "javascript" in html and 'href="javascript' not in html
    link = linkify("see https://example.com/?a=1&b=2. or mailto:ana@example.com!")
    assert 'href="https://example.com/?a=1&amp;b=2"' in link  # the "." stays outside
    assert 'href="mailto:ana@example.com"' in link
    quoted = linkify('"https://example.com" (https://en.wikipedia.org/wiki/A_(b))')
    assert 'href="https://example.com"' in quoted
    assert 'href="https://en.wikipedia.org/wiki/A_(b)"' in quoted
    assert [is_safe_link(u) for u in ("https://a", "mailto:a@b", "javascript:x", "file:///")] == [
        True,
        True,
        False,
        False,
    ]


def test_group_headers_and_day_separators(qtbot) -> None:  # type: ignore[no-untyped-def]
    today = QDate.currentDate()
    yesterday = today.addDays(-1)
    messages = [
        msg(1, "ben", "morning", at(yesterday, 9, 0)),
        msg(2, "ben", "anyone?", at(yesterday, 9, 3)),
        msg(3, "ben", "hello?", at(yesterday, 9, 9)),  # 6 minutes later: a new header
        msg(4, "ben", "new day", at(today, 0, 1)),
        msg(5, "ana", "hi ben", at(today, 0, 2)),
        msg(6, "ana", "sorry, late", at(today, 0, 3)),
    ]
    view = make_view(qtbot, messages)
    model = view.message_model()
    heads = [model.index(r).data(MessageListModel.GroupStartRole) for r in range(6)]
    days = [model.index(r).data(MessageListModel.DayStartRole) for r in range(6)]
    assert heads == [True, False, True, True, True, False]
    assert days == [True, False, False, True, False, False]
    assert day_label(at(yesterday, 9, 0)) == "Yesterday" and day_label(at(today, 0, 1)) == "Today"
    assert not starts_group(messages[0], messages[1]) and starts_group(messages[1], messages[2])
    first, grouped = geometry(view, 0), geometry(view, 1)
    assert first.separator is not None and first.header is not None and first.avatar is not None
    assert grouped.separator is None and grouped.header is None and grouped.avatar is None
    assert geometry(view, 3).separator_text == "Today"
    # A message that arrives later joins the group above it: the header is not repeated.
    view.add([msg(7, "ana", "third", at(today, 0, 4))])
    assert model.index(6).data(MessageListModel.GroupStartRole) is False


def test_my_messages_are_on_the_right_in_a_tinted_bubble(qtbot) -> None:  # type: ignore[no-untyped-def]
    now = QDateTime.currentMSecsSinceEpoch()
    view = make_view(qtbot, [msg(1, "ben", "hi", now), msg(2, "ana", "hello ben", now + MIN)])
    theirs, mine = geometry(view, 0), geometry(view, 1)
    width = view.viewport().width()
    assert theirs.bubble.left() < width / 3 and not theirs.mine
    assert mine.mine and abs(mine.bubble.right() - (width - PAD)) < 1
    image = view.viewport().grab().toImage()
    colors = ink(view.palette())
    dpr = image.devicePixelRatio()

    def fill(g: Geometry) -> str:
        x, y = g.bubble.left() + 4, g.bubble.center().y()  # viewport coordinates
        return image.pixelColor(round(x * dpr), round(y * dpr)).name()

    assert fill(theirs) == colors.bubble.name()
    assert fill(mine) == colors.bubble_own.name()


def test_markup_never_renders(qtbot) -> None:  # type: ignore[no-untyped-def]
    now = QDateTime.currentMSecsSinceEpoch()
    bodies = ["<b>x</b>", '<img src=x.png onerror="alert(1)">', "<a href=x>y</a>"]
    view = make_view(qtbot, [msg(i, "ben", b, now + i) for i, b in enumerate(bodies)])
    for row, body in enumerate(bodies):
        index = view.model().index(row, 0)
        _geo, doc = view.delegate.geometry(view.delegate.option_for(index), index)
        assert doc.toPlainText() == body  # shown as typed
        assert "<img" not in doc.toHtml() and not view.delegate.links(index)
        block = doc.begin()
        it = block.begin()
        while not it.atEnd():
            fmt = it.fragment().charFormat()
            assert fmt.fontWeight() <= 400 and not fmt.isAnchor() and not fmt.isImageFormat()
            it += 1


def test_links_open_in_the_browser_on_click_or_enter(qtbot, browser: Browser) -> None:  # type: ignore[no-untyped-def]
    now = QDateTime.currentMSecsSinceEpoch()
    messages = [
        msg(1, "ben", "notes: https://example.com/notes?a=1&b=2 thanks", now),
        msg(2, "ben", "javascript:alert(1) is not a link", now + 1),
    ]
    view = make_view(qtbot, messages)
    found = None
    rect = view.visualRect(view.model().index(0, 0))
    for x in range(rect.left(), rect.right(), 3):
        for y in range(rect.top(), rect.bottom(), 3):
            if view.delegate.link_at(QPointF(x, y)):
                found = QPoint(x, y)
                break
        if found:
            break
    assert found is not None, "the link is somewhere in the first message"
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=found)
    assert browser.urls == ["https://example.com/notes?a=1&b=2"]
    rect2 = view.visualRect(view.model().index(1, 0))
    assert not any(
        view.delegate.link_at(QPointF(x, y))
        for x in range(rect2.left(), rect2.right(), 4)
        for y in range(rect2.top(), rect2.bottom(), 4)
    )
    view.setCurrentIndex(view.model().index(0, 0))
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Return)
    assert browser.urls[-1] == "https://example.com/notes?a=1&b=2" and len(browser.urls) == 2


def test_long_words_wrap_in_a_narrow_view(qtbot) -> None:  # type: ignore[no-untyped-def]
    now = QDateTime.currentMSecsSinceEpoch()
    view = make_view(qtbot, [msg(1, "ben", "x" * 300, now), msg(2, "ana", "y" * 300, now)], 360)
    width = view.viewport().width()
    for row in (0, 1):
        geo = geometry(view, row)
        assert geo.bubble.right() <= width and geo.bubble.left() >= 0
        assert geo.height > 3 * view.fontMetrics().height()  # wrapped onto several lines
    assert view.horizontalScrollBar().maximum() == 0


def test_emoji_are_drawn_in_colour(qtbot) -> None:  # type: ignore[no-untyped-def]
    if ensure_emoji_font() is None:
        pytest.skip("no colour emoji font installed (Debian: fonts-noto-color-emoji)")
    now = QDateTime.currentMSecsSinceEpoch()
    view = make_view(qtbot, [msg(1, "ben", "🎉🎉🎉 😀", now)])
    index = view.model().index(0, 0)
    opt = view.delegate.option_for(index)
    opt.rect.moveTop(0)
    opt.state |= QStyle.StateFlag.State_Enabled
    image = QImage(opt.rect.size() * 2, QImage.Format.Format_ARGB32)
    image.setDevicePixelRatio(2)
    image.fill(view.palette().color(QPalette.ColorRole.Base))
    painter = QPainter(image)
    view.delegate.paint(painter, QStyleOptionViewItem(opt), index)
    painter.end()
    saturated = sum(
        image.pixelColor(x, y).hsvSaturation() > 120 and image.pixelColor(x, y).value() > 120
        for x in range(0, image.width(), 2)
        for y in range(0, image.height(), 2)
    )
    assert saturated > 40, "colour glyphs, not grey outlines"


def test_elided_header_title_keeps_the_full_text(qtbot) -> None:  # type: ignore[no-untyped-def]
    label = ElidedLabel("A conversation with a really very long title indeed " * 3)
    qtbot.addWidget(label)
    label.resize(160, 30)
    assert label.elided_text().endswith("…") and label.text().startswith("A conversation")
    assert label.minimumSizeHint().width() < 60


def test_empty_states_say_what_to_do(qtbot) -> None:  # type: ignore[no-untyped-def]
    view = make_view(qtbot, [])
    base = view.palette().color(QPalette.ColorRole.Base)

    def inked() -> int:
        image = view.viewport().grab().toImage()
        return sum(
            image.pixelColor(x, y) != base
            for x in range(0, image.width(), 2)
            for y in range(0, image.height(), 2)
        )

    assert inked() == 0  # nothing to say until told
    for texts in (NO_SELECTION, NO_MESSAGES):
        view.empty_texts = texts
        assert inked() > 50
    assert "Ctrl+N" in NO_SELECTION[1]
