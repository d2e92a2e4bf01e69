"""Search in the UI against a real server and real clients: Ctrl+K groups conversations and
messages with the matches highlighted and adds what only the server has; Ctrl+F steps through a
conversation's matches (Enter/Shift+Enter, F3); opening a result scrolls to the message, loading
older pages on the way."""

from __future__ import annotations

from functools import partial

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette

from core import Client
from tests.support.waiting import wait_until
from ui.conversation_pane import ConversationPane
from ui.find_bar import FindBar
from ui.jump import reveal
from ui.search_model import highlighted_html
from ui.search_popup import SearchPopup


@pytest.fixture
def open_pane(pane_opener):  # type: ignore[no-untyped-def]
    return partial(pane_opener, size=(520, 360))


async def filled(client: Client, title: str, bodies: list[str]) -> str:
    conv = await client.create_conversation(title)
    for body in bodies:
        await client.send_message(conv.id, body)
    await client.wait_synced(30)
    return conv.id


def selected_body(pane: ConversationPane) -> str | None:
    index = pane.messages.currentIndex()
    if not index.isValid():
        return None
    return pane.messages.message_model().message(index.row()).body


def on_screen(pane: ConversationPane) -> bool:
    view = pane.messages
    rect = view.visualRect(view.currentIndex())
    return view.currentIndex().isValid() and view.viewport().rect().intersects(rect)


async def test_ctrl_k_groups_conversations_and_messages_and_highlights(
    qtbot, live_server, clients
) -> None:  # type: ignore[no-untyped-def]
    alice = await clients(live_server.url, "alice", "d1")
    release = await filled(alice, "Release planning", ["<b>release</b> & notes", "lunch?"])
    await filled(alice, "Random", ["the release is friday", "unrelated"])
    popup = SearchPopup(alice)
    qtbot.addWidget(popup)
    chosen: list[tuple[str, int, str]] = []
    popup.messageChosen.connect(lambda c, s, m: chosen.append((c, s, m)))
    popup.open()
    assert popup.edit.accessibleName() and popup.list.accessibleName() == "Search results"
    assert [r.text for r in popup.rows()][:3] == ["Conversations", "Random", "Release planning"]
    qtbot.keyClicks(popup.edit, "relea")
    rows = popup.rows()
    assert [(r.kind, r.text) for r in rows] == [
        ("header", "Conversations"),
        ("conversation", "Release planning"),
        ("header", "Messages"),
        ("message", "the release is friday"),
        ("message", "<b>release</b> & notes"),
    ]
    assert rows[1].ranges == ((0, 7),) and rows[3].ranges == ((4, 11),)
    html = highlighted_html(rows[4].text, rows[4].ranges, QPalette())
    assert "&lt;b&gt;" in html and "<b>release</b>" not in html  # escaped, then highlighted
    assert ">release</b>" in html
    assert popup.current_row() == rows[1]  # the first hit, never a header
    qtbot.keyClick(popup.edit, Qt.Key.Key_Down)
    qtbot.keyClick(popup.edit, Qt.Key.Key_Down)
    assert popup.current_row() == rows[4]
    qtbot.keyClick(popup.edit, Qt.Key.Key_Return)
    assert chosen and chosen[0][0] == release and chosen[0][1] == 1 and not popup.isVisible()


async def test_ctrl_k_adds_what_only_the_server_has(qtbot, live_server, clients) -> None:  # type: ignore[no-untyped-def]
    laptop = await clients(live_server.url, "alice", "laptop")
    await filled(laptop, "Build log", [f"build {i} done" for i in range(70)])
    phone = await clients(live_server.url, "alice", "phone")  # caches the newest 50 (20-69)
    await wait_until(lambda: len(phone.conversations()) == 1, what="phone synced")
    popup = SearchPopup(phone)
    qtbot.addWidget(popup)
    popup.open()
    qtbot.keyClicks(popup.edit, "build 1")
    local = [r.text for r in popup.rows() if r.kind == "message"]
    assert local == []  # 1, 10-19 are older than the cache
    await wait_until(
        lambda: (
            any(r.text == "More on the server" for r in popup.rows())
            and not popup.status.text().startswith("Searching")
        ),
        what="the server's results",
    )
    server = [r.text for r in popup.rows() if r.kind == "message"]
    assert server == [f"build {i} done" for i in (19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 1)]
    assert popup.rows()[-1].kind != "status"  # nothing failed
    # Offline, the server part says so; the local part still answers.
    live_server.stop()
    popup.edit.setText("build 2")
    await wait_until(
        lambda: any(r.text == "The server cannot be searched right now" for r in popup.rows()),
        what="the server's failure shown in the list",
        timeout=30,
    )
    assert next(r.text for r in popup.rows() if r.kind == "message") == "build 29 done"


async def test_ctrl_f_steps_through_matches_and_loads_older_pages(
    qtbot, live_server, clients, open_pane
) -> None:  # type: ignore[no-untyped-def]
    alice = await clients(live_server.url, "alice", "d1")
    bodies = [f"note {i}" + (" needle" if i % 50 == 0 else "") for i in range(230)]
    cid = await filled(alice, "Notes", bodies)
    pane = await open_pane(alice, cid)
    assert pane.messages.message_model().rowCount() == 200  # notes 30-229 shown at first
    bar = FindBar(pane)
    bar.open()
    assert bar.isVisible()
    qtbot.keyClicks(bar.edit, "NEEDL")
    assert bar.count_text() == "1 of 5"
    await wait_until(lambda: selected_body(pane) == "note 200 needle", what="newest match")
    qtbot.keyClick(bar.edit, Qt.Key.Key_Return)
    await wait_until(lambda: selected_body(pane) == "note 150 needle", what="older match")
    assert bar.count_text() == "2 of 5"
    qtbot.keyClick(bar.edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    await wait_until(lambda: selected_body(pane) == "note 200 needle", what="newer again")
    for _ in range(4):
        qtbot.keyClick(bar.edit, Qt.Key.Key_F3)
    assert bar.count_text() == "5 of 5"
    await wait_until(
        lambda: selected_body(pane) == "note 0 needle" and on_screen(pane),
        what="the oldest match, loaded from the cache and scrolled to",
    )
    assert pane.messages.message_model().message(0).body == "note 0 needle"
    qtbot.keyClick(bar.edit, Qt.Key.Key_F3)  # wraps to the newest
    assert bar.count_text() == "1 of 5"
    qtbot.keyClick(bar.edit, Qt.Key.Key_Escape)
    assert not bar.isVisible()
    assert bar.older.accessibleName() and bar.newer.accessibleName()


async def test_opening_a_result_scrolls_to_it_loading_from_the_server(
    live_server, clients, open_pane
) -> None:  # type: ignore[no-untyped-def]
    laptop = await clients(live_server.url, "alice", "laptop")
    cid = await filled(laptop, "History", [f"line {i}" for i in range(120)])
    phone = await clients(live_server.url, "alice", "phone")
    await wait_until(lambda: len(phone.messages(cid)) == 50, what="phone synced")
    found = await phone.search_server("line 3")
    target = next(h.message for h in found.messages if h.message.body == "line 3")
    pane = await open_pane(phone, cid)
    assert await reveal(pane, cid, target.seq or 0, target.id)
    await wait_until(
        lambda: selected_body(pane) == "line 3" and on_screen(pane), what="line 3 on screen"
    )
    assert len(phone.messages(cid)) >= 50 and phone.search("line 3").messages  # now cached
    order = [pane.messages.message_model().message(r).seq for r in range(4)]
    assert order == sorted(order)
