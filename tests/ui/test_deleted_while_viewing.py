"""The conversation on screen is deleted elsewhere: the pane goes back to its empty state and
says who deleted it (another user, another device of yours, another window of this device);
unsent text goes to the clipboard and stays offered with the notice."""

from __future__ import annotations

from PySide6.QtWidgets import QApplication

from tests.support.qt import focus
from tests.support.waiting import wait_until
from ui.conversation_pane import ConversationPane
from ui.gone import Gone, gone_text


def recorded(pane: ConversationPane) -> list[Gone]:
    seen: list[Gone] = []
    pane.conversationGone.connect(seen.append)
    return seen


def assert_empty(pane: ConversationPane) -> None:
    """The pane's plain empty state: nothing shown, no stale title, no notice, nothing typed."""
    assert pane.conversation_id() is None
    assert pane.title_label.text() != "" and pane.notice_text() is None
    assert not pane.composer.isEnabled() and pane.composer.toPlainText() == ""
    assert pane.messages.message_model().rowCount() == 0


async def test_deleted_by_another_user(live_server, clients, open_pane) -> None:
    alice = await clients(live_server.url, "alice", "d1")
    bob = await clients(live_server.url, "bob", "d1")
    conv = await alice.create_conversation("Lunch on Friday", ["bob"])
    await alice.wait_synced(10)
    await wait_until(lambda: bob.conversation(conv.id), "bob sees it")
    pane = await open_pane(bob, conv.id)
    gone = recorded(pane)
    await alice.delete_conversation(conv.id)
    await wait_until(lambda: gone, "the pane told what happened")
    assert gone == [Gone(conv.id, "Lunch on Friday", "“Lunch on Friday” was deleted by alice")]
    assert_empty(pane)


async def test_deleted_on_another_device_keeps_what_was_typed(
    live_server, clients, open_pane, qtbot
) -> None:
    desk = await clients(live_server.url, "alice", "desk")
    phone = await clients(live_server.url, "alice", "phone")
    conv = await desk.create_conversation("plans")
    await desk.wait_synced(10)
    await wait_until(lambda: phone.conversation(conv.id), "the phone sees it")
    pane = await open_pane(desk, conv.id)
    await focus(pane)
    qtbot.keyClicks(pane.composer, "a long answer, half written")
    QApplication.clipboard().setText("")
    gone = recorded(pane)
    await phone.delete_conversation(conv.id)
    await wait_until(lambda: gone, "the pane told what happened")
    assert gone[0].text == (
        "“plans” was deleted on another device — your unsent text was copied to the clipboard"
    )
    assert gone[0].draft == "a long answer, half written"
    assert QApplication.clipboard().text() == "a long answer, half written"
    assert desk.draft(conv.id) == ""  # taken out of the cache: it lives on the clipboard now
    assert_empty(pane)


async def test_deleted_in_another_window_of_this_device(live_server, clients, open_pane) -> None:
    desk = await clients(live_server.url, "alice", "desk")
    conv = await desk.create_conversation("Design review")
    watching = await open_pane(desk, conv.id)
    deleting = await open_pane(desk, conv.id)
    deleting.confirm = lambda _parent, _title: True
    gone = recorded(watching)
    left_here = recorded(deleting)
    deleting.delete_button.click()
    await wait_until(lambda: gone, "the other window told what happened")
    assert gone[0].text == "“Design review” was deleted in another window"
    assert left_here == []  # the window it was deleted in says so itself, without a toast
    assert_empty(watching)


def test_the_words() -> None:
    assert gone_text("", "bob", "alice", False) == "A conversation was deleted by bob"
    assert gone_text("x", None, "alice", False) == "“x” was deleted on another device"
    assert gone_text("x", "alice", "alice", True) == "“x” was deleted in another window"
