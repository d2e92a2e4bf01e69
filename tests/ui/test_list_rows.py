"""Conversation list rows as in Telegram or Element: avatar with initials on a stable colour,
elided title, the last message's author and first line (kept current from the cache: a newer
message, a pending send), its time (today / this week / older), the 99+ badge, markers, and the
empty list saying what to do."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QDate, QDateTime, QLocale, QRectF, Qt, QTime
from PySide6.QtGui import QColor, QFontMetricsF, QImage, QPainter, QPalette
from PySide6.QtWidgets import QStyle, QStyleOptionViewItem

from core.model import ConversationView, LastMessage, preview_line
from tests.support.waiting import wait_until
from ui.conversation_delegate import NO_MESSAGES, RowLayout, badge_text, preview_text
from ui.conversation_list import ConversationListView
from ui.empty_state import NO_CONVERSATIONS
from ui.message_format import list_time
from ui.models import ConversationListModel
from ui.theme import AVATARS, avatar_color, contrast, initials, ink

UK = QLocale(QLocale.Language.English, QLocale.Country.UnitedKingdom)


def view(i: int, **kw: Any) -> ConversationView:
    fields: dict[str, Any] = dict(
        id=f"c{i}",
        title=f"Conversation {i}",
        pinned=False,
        creator="alice",
        members=("alice", "bob"),
        version=1,
        created_at=0,
        updated_at=i,
        message_count=0,
        read_seq=0,
        unread=0,
    )
    fields.update(kw)
    return ConversationView(**fields)


def list_view(qtbot, views: list[ConversationView], width: int = 320) -> ConversationListView:  # type: ignore[no-untyped-def]
    lv = ConversationListView(ConversationListModel(views))
    qtbot.addWidget(lv)
    lv.resize(width, 400)
    lv.show()
    return lv


def paint(lv: ConversationListView, row: int) -> tuple[QImage, RowLayout]:
    index = lv.model().index(row, 0)
    opt = QStyleOptionViewItem()
    opt.initFrom(lv)
    rect = lv.visualRect(index)
    opt.rect = rect.translated(0, -rect.top())
    opt.state |= QStyle.StateFlag.State_Enabled | QStyle.StateFlag.State_Active
    image = QImage(opt.rect.size(), QImage.Format.Format_ARGB32)
    image.fill(lv.palette().color(QPalette.ColorRole.Base))
    painter = QPainter(image)
    lv.delegate.paint(painter, opt, index)
    painter.end()
    return image, lv.delegate.row_layout(opt, index)


def test_preview_is_the_first_line_with_the_author() -> None:
    assert preview_line("\n  \nfirst line\nsecond") == "first line"
    long = preview_line("x" * 500)
    assert len(long) <= 120 and long.endswith("…")
    mine = view(1, last=LastMessage("alice", "on my way", 5, mine=True))
    theirs = view(2, last=LastMessage("bob", "where are you?", 5))
    assert preview_text(mine) == ("You: ", "on my way")
    assert preview_text(theirs) == ("bob: ", "where are you?")
    assert preview_text(view(3)) == ("", NO_MESSAGES)


def test_times_today_this_week_older() -> None:
    now = QDateTime(QDate(2026, 12, 4), QTime(18, 0))  # a Friday

    def at(days_ago: int, h: int, m: int) -> int:
        return QDateTime(QDate(2026, 12, 4).addDays(-days_ago), QTime(h, m)).toMSecsSinceEpoch()

    assert list_time(at(0, 14, 5), now, UK) == "14:05"
    assert list_time(at(3, 9, 0), now, UK) == "Tue"
    older = list_time(at(30, 9, 0), now, UK)
    assert older == UK.toString(QDate(2026, 11, 4), QLocale.FormatType.ShortFormat)
    assert "2026" in older or "26" in older


def test_badge_initials_and_stable_avatar_colours() -> None:
    assert [badge_text(n) for n in (0, 1, 99, 100, 5000)] == ["", "1", "99", "99+", "99+"]
    assert initials("Release 2.4") == "R2" and initials("lunch") == "L"
    assert initials("  ") == "?" and initials("🎉 party time") == "PT"
    assert avatar_color("c1") == avatar_color("c1")  # the same in every run and process
    spread = {avatar_color(f"conv-{i}").name() for i in range(100)}
    assert len(spread) >= len(AVATARS) - 1
    white = QColor("#ffffff")
    assert all(contrast(white, avatar_color(f"x{i}")) >= 4.5 for i in range(50))


def test_row_shows_avatar_title_preview_time_badge_and_markers(qtbot) -> None:  # type: ignore[no-untyped-def]
    last = LastMessage("bob", "Tagged 2.4.0-rc1", QDateTime.currentMSecsSinceEpoch())
    title = "A very long conversation title that cannot possibly fit in a narrow list " * 2
    lv = list_view(
        qtbot,
        [view(1, title=title, unread=250, pinned=True, pending=True, failed=True, last=last)],
        width=300,
    )
    image, lay = paint(lv, 0)
    assert lay.badge_text == "99+" and lay.badge is not None
    assert lay.pin is not None and lay.pending is not None and lay.failed is not None
    assert lay.time_text == list_time(last.created_at)
    # Left to right: avatar, title, markers, time; the preview ends before the badge.
    assert lay.avatar.right() < lay.title.left() < lay.title.right() < lay.pin.left()
    assert lay.failed.right() < lay.time.left() and lay.time.right() <= 300
    assert lay.preview.right() < lay.badge.left()
    # The title is elided with "…" to the space it has.
    font = lv.delegate.title_font(QStyleOptionViewItem(), lv.model().index(0, 0))
    elided = QFontMetricsF(font).elidedText(title, Qt.TextElideMode.ElideRight, lay.title.width())
    assert elided.endswith("…") and len(elided) < len(title)
    # The avatar is painted in the conversation's colour, with white initials on it.
    a: QRectF = lay.avatar
    assert image.pixelColor(round(a.left() + 6), round(a.center().y())) == avatar_color("c1")
    whites = [
        image.pixelColor(x, y)
        for x in range(round(a.left()), round(a.right()))
        for y in range(round(a.top()), round(a.bottom()))
    ]
    assert any(c.lightness() > 240 for c in whites), "initials drawn in white"


async def test_preview_follows_the_last_message(live_server, clients, qtbot) -> None:  # type: ignore[no-untyped-def]
    from ui.bridge import ClientBridge

    alice = await clients(live_server.url, "alice", "d1")
    bob = await clients(live_server.url, "bob", "d1")
    conv = await alice.create_conversation("plans", ["bob"])
    await alice.wait_synced(10)
    assert alice.conversation(conv.id).last is None
    await bob.wait_synced(10)
    await wait_until(lambda: bob.conversation(conv.id) is not None, what="bob sees it")
    await bob.send_message(conv.id, "who brings the cake?\nand the candles")
    await wait_until(
        lambda: (
            (alice.conversation(conv.id).last or LastMessage("", "", 0)).text
            == "who brings the cake?"
        ),
        what="alice's preview shows bob's first line",
    )
    last = alice.conversation(conv.id).last
    assert last is not None and last.author == "bob" and not last.mine
    bridge = ClientBridge(alice)
    model = ConversationListModel(alice.conversations())
    bridge.conversationsChanged.connect(model.apply)
    try:
        await alice.send_message(conv.id, "me!")  # pending at once, then confirmed
        mine = alice.conversation(conv.id).last
        assert mine is not None and mine.mine and mine.text == "me!"
        await alice.wait_synced(10)
        await wait_until(
            lambda: (v := model.view(0).last) is not None and v.text == "me!" and not v.pending,
            what="the list row's preview: my confirmed message",
        )
    finally:
        bridge.close()


def test_empty_list_says_what_to_do(qtbot) -> None:  # type: ignore[no-untyped-def]
    lv = list_view(qtbot, [])
    assert lv.empty_texts == NO_CONVERSATIONS and "Ctrl+N" in NO_CONVERSATIONS[1]
    qtbot.waitExposed(lv)
    empty = lv.viewport().grab().toImage()
    base = lv.palette().color(QPalette.ColorRole.Base)
    inked = sum(
        empty.pixelColor(x, y) != base
        for x in range(0, empty.width(), 2)
        for y in range(0, empty.height(), 2)
    )
    assert inked > 50, "the empty state's text is painted"
    lv.source_model().upsert(view(1))
    qtbot.waitUntil(lambda: lv.model().rowCount() == 1)
    lv.repaint()
    full = lv.viewport().grab().toImage()
    # Below the one row, nothing is painted any more.
    row_bottom = lv.visualRect(lv.model().index(0, 0)).bottom() + 4
    below = [
        full.pixelColor(x, y)
        for x in range(0, full.width(), 3)
        for y in range(row_bottom, full.height(), 3)
    ]
    assert all(c == base for c in below)


def test_a_narrow_list_shows_avatars_with_their_badges(qtbot) -> None:  # type: ignore[no-untyped-def]
    last = LastMessage("bob", "hi", QDateTime.currentMSecsSinceEpoch())
    lv = list_view(qtbot, [view(1, unread=4, last=last, failed=True)], width=76)
    image, lay = paint(lv, 0)
    assert lay.title.width() == 0 and lay.preview.width() == 0 and lay.time_text == ""
    assert lay.badge is not None and lay.badge.intersects(lay.avatar)  # on its corner
    assert lay.badge.right() <= lv.viewport().width() and lay.badge.top() >= 0
    assert lay.failed is not None and lay.failed.intersects(lay.avatar)
    accent = ink(lv.palette()).accent
    b = lay.badge
    assert image.pixelColor(round(b.left() + b.height() * 0.3), round(b.center().y())) == accent


async def test_preview_follows_an_edited_or_deleted_last_message(live_server, clients) -> None:  # type: ignore[no-untyped-def]
    alice = await clients(live_server.url, "alice", "d1")
    bob = await clients(live_server.url, "bob", "d1")
    conv = await alice.create_conversation("plans", ["bob"])
    await alice.send_message(conv.id, "first")
    last = await alice.send_message(conv.id, "see you at 5")
    await alice.wait_synced(10)

    def preview(client: Any) -> str | None:
        view = client.conversation(conv.id)
        return view.last.text if view is not None and view.last is not None else None

    await wait_until(lambda: preview(bob) == "see you at 5", what="bob's preview")
    await alice.edit_message(conv.id, last.id, "see you at 6")
    assert preview(alice) == "see you at 6"  # at once, while the edit is pending
    await alice.wait_synced(10)
    await wait_until(lambda: preview(bob) == "see you at 6", what="bob's preview follows the edit")
    await alice.delete_message(conv.id, last.id)
    assert preview(alice) == "first"
    await alice.wait_synced(10)
    await wait_until(lambda: preview(bob) == "first", what="bob's preview after the delete")
