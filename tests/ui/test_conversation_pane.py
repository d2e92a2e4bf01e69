"""The conversation pane against a real server and real clients: live messages, the "new
messages" banner, the composer, deletes and renames elsewhere, and read state across devices."""

from __future__ import annotations

from functools import partial

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QHBoxLayout, QWidget

from core import Client
from core.model import ConversationView, MessageView
from tests.support.waiting import wait_until
from ui.bridge import ClientBridge
from ui.conversation_list import ConversationListView
from ui.conversation_pane import DELETED_HERE, ConversationPane
from ui.message_list import MessageListView
from ui.models import ConversationListModel


@pytest.fixture
def open_pane(pane_opener):  # type: ignore[no-untyped-def]
    return partial(pane_opener, active=True)


async def shared(live_server, clients, title: str = "chat") -> tuple[Client, Client, str]:  # type: ignore[no-untyped-def]
    """Alice and Bob (each on a device of their own) and a conversation both see."""
    a = await clients(live_server.url, "alice", "d1")
    b = await clients(live_server.url, "bob", "d1")
    conv = await a.create_conversation(title, ["bob"])
    await a.wait_synced(15)
    await wait_until(lambda: b.conversation(conv.id) is not None, what="bob sees it")
    return a, b, conv.id


def rows(pane: ConversationPane) -> list[MessageView]:
    model = pane.messages.message_model()
    return [model.message(r) for r in range(model.rowCount())]


async def test_a_message_from_another_client_appears(live_server, clients, open_pane) -> None:
    a, b, cid = await shared(live_server, clients)
    pane = await open_pane(b, cid)
    assert pane.conversation_id() == cid and pane.title_label.text() == "chat"
    await a.send_message(cid, "hi bob")
    await wait_until(lambda: [m.body for m in rows(pane)] == ["hi bob"], what="message shown")
    assert rows(pane)[0].author == "alice" and not rows(pane)[0].pending
    # Shown at the bottom of the active window: read at once.
    await wait_until(
        lambda: b.unread(cid) == 0 and b.conversation(cid).message_count == 1,
        what="bob read it at once",
    )
    # Only this pane's conversation reaches it.
    other = await a.create_conversation("other", ["bob"])
    await a.send_message(other.id, "elsewhere")
    await a.wait_synced(15)
    await wait_until(lambda: b.messages(other.id), what="bob got the other message")
    assert [m.body for m in rows(pane)] == ["hi bob"]


async def test_banner_instead_of_jumping_when_scrolled_up(
    live_server, clients, open_pane, qtbot
) -> None:
    a, b, cid = await shared(live_server, clients)
    for i in range(14):
        await a.send_message(cid, f"message {i}\nsecond line\nthird line")
    await a.wait_synced(15)
    await wait_until(lambda: len(b.messages(cid)) == 14, what="history at bob")
    pane = await open_pane(b, cid)
    view, bar = pane.messages, pane.messages.verticalScrollBar()
    await wait_until(lambda: bar.maximum() > 200 and view.at_bottom(), what="opened at bottom")
    assert not view.banner_visible()
    await wait_until(lambda: b.unread(cid) == 0, what="read when opened")
    await b.wait_synced(15)
    bar.setValue(bar.maximum() // 2)  # the user scrolls up
    scrolled, old_max = bar.value(), bar.maximum()
    assert not view.at_bottom()
    await a.send_message(cid, "news")
    await wait_until(lambda: view.banner_visible(), what="banner shown")
    await wait_until(lambda: bar.maximum() > old_max, what="layout grew")
    assert bar.value() == scrolled  # no jump
    assert view.banner.accessibleName() == "Jump to new messages"
    assert rows(pane)[-1].body == "news"
    await wait_until(lambda: b.unread(cid) == 1, what="news unread while scrolled up")
    qtbot.mouseClick(view.banner, Qt.MouseButton.LeftButton)
    await wait_until(lambda: view.at_bottom() and not view.banner_visible(), what="at bottom")
    await wait_until(lambda: b.unread(cid) == 0, what="read once at the bottom")
    # At the bottom, the view follows new messages.
    await a.send_message(cid, "more news")
    await wait_until(lambda: rows(pane)[-1].body == "more news", what="followed")
    await wait_until(lambda: view.at_bottom() and bar.maximum() > old_max, what="still at end")
    assert not view.banner_visible()


async def test_enter_sends_shift_enter_breaks_the_line(
    live_server, clients, open_pane, qtbot
) -> None:
    a, b, cid = await shared(live_server, clients)
    pane = await open_pane(b, cid)
    composer = pane.composer
    assert composer.accessibleName() == "Message" and composer.placeholderText()
    inserted: list[tuple[str, bool]] = []
    model = pane.messages.message_model()
    model.rowsInserted.connect(
        lambda _p, first, last: inserted.extend(
            (model.message(r).body, model.message(r).pending) for r in range(first, last + 1)
        )
    )
    qtbot.keyClicks(composer, "   ")
    qtbot.keyClick(composer, Qt.Key.Key_Return)  # blank: not sent
    composer.clear()
    qtbot.keyClicks(composer, "hello")
    qtbot.keyClick(composer, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(composer, "world")
    assert composer.toPlainText() == "hello\nworld"
    qtbot.keyClick(composer, Qt.Key.Key_Return)
    assert composer.toPlainText() == ""
    await wait_until(
        lambda: [(m.body, m.pending) for m in rows(pane)] == [("hello\nworld", False)],
        what="confirmed",
    )
    assert inserted[0] == ("hello\nworld", True)  # shown as pending first
    await wait_until(lambda: [m.body for m in a.messages(cid)] == ["hello\nworld"], what="alice")
    # A refused send keeps the text and says why, inline.
    pane.send("x" * (65 * 1024))
    await wait_until(lambda: pane.error(), what="inline error")
    assert "64 KiB" in (pane.error() or "")
    assert composer.toPlainText() == "x" * (65 * 1024)


async def test_deleted_elsewhere_while_viewed(live_server, clients, open_pane) -> None:
    a, b, cid = await shared(live_server, clients)
    await a.send_message(cid, "soon gone")
    pane = await open_pane(b, cid)
    await wait_until(lambda: rows(pane), what="message shown")
    left: list[str] = []
    pane.conversationLeft.connect(left.append)
    await a.delete_conversation(cid)
    await wait_until(lambda: left == [cid], what="conversationLeft")
    assert pane.notice_text() is None  # the empty state; the window's toast says what happened
    assert rows(pane) == [] and pane.conversation_id() is None
    assert not pane.composer.isEnabled()
    # Deleting from the pane itself (after the injected confirmation) says so differently.
    mine = await b.create_conversation("bob's own", ["alice"])
    answers = [False, True]
    pane.confirm = lambda _parent, _title: answers.pop(0)
    deleted: list[str] = []
    pane.conversationDeleted.connect(deleted.append)
    pane.show_conversation(mine.id)
    assert not pane.notice.isVisible() and pane.delete_button.isEnabled()
    pane.delete_button.click()  # declined
    assert b.conversation(mine.id) is not None
    pane.delete_button.click()
    await wait_until(lambda: deleted == [mine.id], what="conversationDeleted")
    assert pane.notice_text() == DELETED_HERE and left == [cid]
    await b.wait_synced(15)
    await wait_until(lambda: a.conversation(mine.id) is None, what="gone at alice")


async def test_only_the_creator_may_delete(live_server, clients, open_pane) -> None:
    _a, b, cid = await shared(live_server, clients)
    pane = await open_pane(b, cid)
    assert not pane.delete_button.isEnabled()  # alice's conversation
    # Were it attempted anyway, the server's refusal is shown inline and the pane stays.
    pane.delete_button.setEnabled(True)
    pane.confirm = lambda _parent, _title: True
    pane.delete_button.click()
    await wait_until(lambda: pane.error(), what="refusal shown")
    assert "creator" in (pane.error() or "")
    await wait_until(lambda: pane.conversation_id() == cid, what="conversation shown again")
    assert b.conversation(cid) is not None


async def test_opening_marks_read_on_this_and_other_devices(
    live_server, clients, open_pane
) -> None:
    a, b, cid = await shared(live_server, clients)
    b2 = await clients(live_server.url, "bob", "d2")
    for i in range(3):
        await a.send_message(cid, f"unread {i}")
    await a.wait_synced(15)
    await wait_until(lambda: b.unread(cid) == 3 and b2.unread(cid) == 3, what="3 unread")
    await open_pane(b, cid)
    await wait_until(lambda: b.unread(cid) == 0, what="read here")
    await wait_until(lambda: b2.unread(cid) == 0, timeout=15, what="read on bob's other device")
    assert a.unread(cid) == 0  # alice's own messages were never unread for her


async def test_rename_from_the_header_and_from_elsewhere(
    live_server, clients, open_pane, qtbot
) -> None:
    a, b, cid = await shared(live_server, clients)
    pane = await open_pane(b, cid)
    pane.composer.setFocus()
    qtbot.keyClick(pane.composer, Qt.Key.Key_F2)
    edit = pane.title_edit
    assert edit.isVisible() and edit.hasFocus() and edit.text() == "chat"
    qtbot.keyClicks(edit, "nope")
    qtbot.keyClick(edit, Qt.Key.Key_Escape)  # cancels
    assert not edit.isVisible() and pane.title_label.isVisible()
    assert b.conversation(cid).title == "chat"
    pane.rename_button.click()
    assert edit.isVisible()
    qtbot.keyClicks(edit, "Renamed by bob")
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert not edit.isVisible()
    await wait_until(lambda: b.conversation(cid).title == "Renamed by bob", what="optimistic")
    await wait_until(lambda: pane.title_label.text().startswith("Renamed by bob"), what="label")
    await wait_until(lambda: a.conversation(cid).title == "Renamed by bob", what="at alice")
    await a.rename_conversation(cid, "Renamed by alice")
    await wait_until(lambda: pane.title_label.text() == "Renamed by alice", what="live title")
    # A refused rename is shown inline, never raised.
    pane.start_rename()
    edit.clear()
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    await wait_until(lambda: pane.error(), what="inline error")
    assert "blank" in (pane.error() or "")


def test_message_list_asks_for_older_and_keeps_its_place(qtbot) -> None:
    def msg(seq: int) -> MessageView:
        return MessageView(f"m{seq}", "c", seq, "alice", f"message {seq}\nline two", seq * 1000)

    view = MessageListView()
    qtbot.addWidget(view)
    view.resize(300, 200)
    view.set_messages([msg(s) for s in range(51, 81)])
    with qtbot.waitExposed(view):
        view.show()
    bar = view.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0 and view.at_bottom(), timeout=3000)
    asked: list[int] = []
    view.olderRequested.connect(lambda: asked.append(1))
    bar.setValue(bar.minimum())
    bar.setValue(bar.minimum())
    assert asked == [1]  # once per arrival at the top
    top = view.indexAt(view.viewport().rect().topLeft()).data(view.message_model().ViewRole)
    assert view.prepend([msg(s) for s in range(1, 51)]) == 50
    qtbot.waitUntil(lambda: bar.maximum() > 1000, timeout=3000)
    qtbot.wait(50)  # let the batched layout finish
    now = view.indexAt(view.viewport().rect().topLeft()).data(view.message_model().ViewRole)
    assert now.id == top.id and bar.value() > 0
    assert not view.banner_visible()


class FakeClient:
    """Just enough of ``Client`` for a pane that does no I/O."""

    def __init__(self) -> None:
        from core.events import ClientEvents

        self.view = ConversationView("c1", "Fake", False, "me", ("me",), 1, 0, 0, 0, 0, 0)
        self.events = ClientEvents()  # nothing emits: the pane gets no events

    def conversation(self, cid: str) -> ConversationView | None:
        return self.view if cid == "c1" else None

    def messages(self, _cid: str) -> list[MessageView]:
        return []

    def draft(self, _cid: str) -> str:
        return ""

    def set_draft(self, _cid: str, _text: str) -> None:
        pass


def test_tab_order_runs_list_messages_composer(qtbot) -> None:
    client = FakeClient()
    window = QWidget()
    qtbot.addWidget(window)
    layout = QHBoxLayout(window)
    lv = ConversationListView(ConversationListModel([]))
    pane = ConversationPane(client, ClientBridge(client))
    layout.addWidget(lv)
    layout.addWidget(pane)
    QWidget.setTabOrder(lv, pane)  # what the main window does
    pane.show_conversation("c1")
    window.show()
    with qtbot.waitActive(window):
        window.activateWindow()
    lv.setFocus()
    order = [QApplication.focusWidget()]
    for _ in range(2):
        window.focusNextChild()
        order.append(QApplication.focusWidget())
    assert order == [lv, pane.messages, pane.composer]
    interactive = (
        pane.messages,
        pane.composer,
        pane.send_button,
        pane.rename_button,
        pane.pin_button,
        pane.delete_button,
        pane.title_edit,
        pane.messages.banner,
    )
    assert all(w.accessibleName() for w in interactive)
