"""Drafts in the pane, against a real server and real clients: each conversation keeps its own,
it comes back after a restart, a send clears it everywhere, a composer being typed in is never
overwritten, a refused send gives its text back, and a conversation deleted elsewhere leaves
its draft on the clipboard."""

from __future__ import annotations

import types

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from core import Client
from tests.support.qt import focus
from tests.support.waiting import wait_until
from ui.drafts import deleted_notice


async def test_each_conversation_keeps_its_own_draft(
    live_server, clients, open_pane, qtbot
) -> None:
    a = await clients(live_server.url, "alice", "d1")
    one = await a.create_conversation("one")
    two = await a.create_conversation("two")
    pane = await open_pane(a, one.id)
    await focus(pane)
    qtbot.keyClicks(pane.composer, "meant for one")
    pane.show_conversation(two.id)  # switching saves at once
    assert a.draft(one.id) == "meant for one"
    assert pane.composer.toPlainText() == ""  # never carried over to another conversation
    qtbot.keyClicks(pane.composer, "meant for two")
    pane.show_conversation(one.id)
    assert pane.composer.toPlainText() == "meant for one"
    assert a.draft(two.id) == "meant for two"
    pane.show_conversation(two.id)
    assert pane.composer.toPlainText() == "meant for two"
    # Typing is saved shortly even without a switch (a crash loses at most a moment).
    qtbot.keyClicks(pane.composer, ", more")
    await wait_until(lambda: a.draft(two.id) == "meant for two, more", what="saved")


async def test_a_draft_comes_back_after_a_restart(live_server, clients, open_pane, qtbot) -> None:
    a = await clients(live_server.url, "alice", "d1")
    conv = await a.create_conversation("later")
    await a.wait_synced(10)
    pane = await open_pane(a, conv.id)
    await focus(pane)
    qtbot.keyClicks(pane.composer, "I will finish this tomorrow")
    await wait_until(lambda: a.draft(conv.id) == "I will finish this tomorrow", what="saved")
    pane.close()
    await a.close()  # the app quits (or is killed: the draft is already committed)
    again = await Client.open(a.config)
    try:
        pane2 = await open_pane(again, conv.id)
        assert pane2.composer.toPlainText() == "I will finish this tomorrow"
    finally:
        await again.close()


async def test_sending_clears_the_draft_in_every_window(
    live_server, clients, open_pane, qtbot
) -> None:
    a = await clients(live_server.url, "alice", "d1")
    conv = await a.create_conversation("chat")
    here, there = await open_pane(a, conv.id), await open_pane(a, conv.id)
    await focus(here)
    qtbot.keyClicks(here.composer, "see you at 8")
    await wait_until(lambda: there.composer.toPlainText() == "see you at 8", what="mirrored")
    qtbot.keyClick(here.composer, Qt.Key.Key_Return)
    await wait_until(lambda: there.composer.toPlainText() == "", what="cleared there")
    assert here.composer.toPlainText() == "" and a.draft(conv.id) == ""
    await a.wait_synced(10)
    assert [m.body for m in a.messages(conv.id)] == ["see you at 8"]
    assert a.draft(conv.id) == "" and there.composer.toPlainText() == ""


async def test_a_composer_being_typed_in_is_never_overwritten(
    live_server, clients, open_pane, qtbot
) -> None:
    a = await clients(live_server.url, "alice", "d1")
    conv = await a.create_conversation("chat")
    idle, typing = await open_pane(a, conv.id), await open_pane(a, conv.id)
    await focus(typing)
    qtbot.keyClicks(typing.composer, "mine")
    a.set_draft(conv.id, "theirs")  # another window of the device, say, at the same moment
    assert idle.composer.toPlainText() == "theirs"  # not focused: shows the latest
    assert typing.composer.toPlainText() == "mine"  # focused and typed in: untouched
    # The last writer wins between the others: the typed text reaches them shortly.
    await wait_until(lambda: idle.composer.toPlainText() == "mine", what="typed text mirrored")
    assert a.draft(conv.id) == "mine" and typing.composer.toPlainText() == "mine"
    # Focused but not typed in since: a change from elsewhere is shown.
    a.set_draft(conv.id, "edited elsewhere")
    assert typing.composer.toPlainText() == "edited elsewhere"
    assert typing.composer.hasFocus()


async def test_a_refused_send_puts_its_text_back(
    live_server, clients, open_pane, qtbot, monkeypatch
) -> None:
    a = await clients(live_server.url, "alice", "d1")
    conv = await a.create_conversation("chat")
    first = await a.send_message(conv.id, "first")
    await a.wait_synced(10)
    pane = await open_pane(a, conv.id)
    await focus(pane)
    # The server refuses the next send for good (its id is taken by another message).
    taken = types.SimpleNamespace(uuid4=lambda: first.id)
    monkeypatch.setattr("core.commands.uuid", taken)
    qtbot.keyClicks(pane.composer, "are you there?")
    qtbot.keyClick(pane.composer, Qt.Key.Key_Return)
    assert pane.composer.toPlainText() == ""
    await wait_until(lambda: pane.error(), what="the refusal shown")
    await wait_until(lambda: pane.composer.toPlainText() == "are you there?", what="text back")
    assert a.draft(conv.id) == "are you there?"


async def test_a_refused_send_while_typing_keeps_both_texts(
    live_server, clients, open_pane, qtbot, monkeypatch
) -> None:
    a = await clients(live_server.url, "alice", "d1")
    conv = await a.create_conversation("chat")
    first = await a.send_message(conv.id, "first")
    await a.wait_synced(10)
    pane = await open_pane(a, conv.id)
    await focus(pane)
    monkeypatch.setattr("core.commands.uuid", types.SimpleNamespace(uuid4=lambda: first.id))
    qtbot.keyClicks(pane.composer, "are you there?")
    qtbot.keyClick(pane.composer, Qt.Key.Key_Return)
    qtbot.keyClicks(pane.composer, "second thought")  # typed before the refusal comes back
    await wait_until(lambda: pane.error(), what="the refusal shown")
    await wait_until(
        lambda: pane.composer.toPlainText() == "second thought\n\nare you there?",
        what="both texts in the composer",
    )
    assert pane.composer.hasFocus()
    await wait_until(
        lambda: a.draft(conv.id) == "second thought\n\nare you there?", what="both saved"
    )


async def test_deleted_elsewhere_leaves_the_draft_on_the_clipboard(
    live_server, clients, open_pane, qtbot
) -> None:
    a = await clients(live_server.url, "alice", "d1")
    b = await clients(live_server.url, "bob", "d1")
    conv = await a.create_conversation("plans", ["bob"])
    await a.wait_synced(10)
    await wait_until(lambda: b.conversation(conv.id), what="bob sees it")
    pane = await open_pane(b, conv.id)
    await focus(pane)
    QApplication.clipboard().setText("")
    qtbot.keyClicks(pane.composer, "a long answer, half written")
    left: list[str] = []
    pane.conversationLeft.connect(left.append)
    gone: list = []
    pane.conversationGone.connect(gone.append)  # the window shows it as a toast
    await a.delete_conversation(conv.id)
    await wait_until(lambda: left == [conv.id], what="the conversation gone")
    assert QApplication.clipboard().text() == "a long answer, half written"
    assert gone[0].draft == "a long answer, half written" and "clipboard" in gone[0].text
    assert deleted_notice("plans") == (
        "“plans” was deleted elsewhere — your draft was copied to the clipboard"
    )
    assert b.draft(conv.id) == "" and pane.composer.toPlainText() == ""
