"""Editing and deleting one's own messages in the conversation pane, against a real server and
real clients: the context menu (mouse and keyboard), Up in an empty composer, Enter and Esc, the
"edited" marker, and a deleted message disappearing in every window and on every device."""

from __future__ import annotations

from functools import partial

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtWidgets import QApplication

from core import Client
from core.model import MessageView
from tests.support.waiting import wait_until
from ui.conversation_pane import ConversationPane
from ui.models import MessageListModel


@pytest.fixture
def open_pane(pane_opener):  # type: ignore[no-untyped-def]
    return partial(pane_opener, size=(520, 420), active=True)


async def chat(live_server, clients) -> tuple[Client, Client, str]:  # type: ignore[no-untyped-def]
    """Alice and Bob, a conversation of theirs with one message of each, seen by both."""
    a = await clients(live_server.url, "alice", "d1")
    b = await clients(live_server.url, "bob", "d1")
    conv = await a.create_conversation("chat", ["bob"])
    await a.wait_synced(15)
    await wait_until(lambda: b.conversation(conv.id) is not None, "bob to see it")
    await a.send_message(conv.id, "first from alice")
    await a.wait_synced(15)
    await b.send_message(conv.id, "and one from bob")
    await b.wait_synced(15)
    await wait_until(lambda: len(a.messages(conv.id)) == 2, "alice to get bob's message")
    return a, b, conv.id


def rows(pane: ConversationPane) -> list[MessageView]:
    model = pane.messages.message_model()
    return [model.message(r) for r in range(model.rowCount())]


def index_of(pane: ConversationPane, body: str) -> QModelIndex:
    model = pane.messages.message_model()
    [row] = [r for r in range(model.rowCount()) if model.message(r).body == body]
    return model.index(row)


def menu_texts(pane: ConversationPane) -> list[str]:
    menu = pane.message_actions.menu
    assert menu is not None and menu.isVisible()
    return [a.text() for a in menu.actions() if not a.isSeparator()]


def trigger(pane: ConversationPane, text: str) -> None:
    menu = pane.message_actions.menu
    assert menu is not None
    [action] = [a for a in menu.actions() if a.text() == text]
    menu.close()  # as a click does: the menu closes, then the action runs
    action.trigger()


async def test_the_context_menu_edits_own_messages_and_enter_saves(
    live_server, clients, open_pane, qtbot
) -> None:
    a, b, cid = await chat(live_server, clients)
    pane = await open_pane(a, cid)
    await wait_until(lambda: len(rows(pane)) == 2, "both messages shown")
    view = pane.messages
    # Right click: Edit and Delete on her own message, only Copy on Bob's.
    mine, bobs = index_of(pane, "first from alice"), index_of(pane, "and one from bob")
    view.customContextMenuRequested.emit(view.visualRect(bobs).center())
    assert menu_texts(pane) == ["Copy text"]
    pane.message_actions.menu.close()
    view.customContextMenuRequested.emit(view.visualRect(mine).center())
    assert menu_texts(pane) == ["Edit", "Delete…", "Copy text"]
    pane.message_actions.menu.close()
    # The keyboard: Shift+F10 (or the Menu key) on the selected message.
    view.setFocus()
    view.setCurrentIndex(mine)
    qtbot.keyClick(view, Qt.Key.Key_F10, Qt.KeyboardModifier.ShiftModifier)
    assert menu_texts(pane) == ["Edit", "Delete…", "Copy text"]
    trigger(pane, "Edit")

    bar = pane.message_actions.bar
    assert bar.isVisible() and not pane.composer.isVisible()
    assert bar.editor.toPlainText() == "first from alice" and bar.editor.hasFocus()
    bar.editor.setPlainText("first from alice, edited")
    qtbot.keyClick(bar.editor, Qt.Key.Key_Return)
    assert not bar.isVisible() and pane.composer.isVisible()
    await wait_until(
        lambda: rows(pane)[0].body == "first from alice, edited", "the edit shown at once"
    )
    assert rows(pane)[0].edited
    await a.wait_synced(15)
    await wait_until(lambda: not rows(pane)[0].edit_pending, "the edit confirmed")
    model = pane.messages.message_model()
    assert "(edited)" in model.index(0).data(Qt.ItemDataRole.AccessibleTextRole)
    pane.grab()  # the "edited" marker paints
    await wait_until(
        lambda: b.messages(cid)[0].body == "first from alice, edited" and b.messages(cid)[0].edited,
        "bob to get the edit",
    )
    # Copy text copies the message.
    view.customContextMenuRequested.emit(
        view.visualRect(index_of(pane, "and one from bob")).center()
    )
    trigger(pane, "Copy text")
    assert QApplication.clipboard().text() == "and one from bob"


async def test_up_in_an_empty_composer_edits_the_last_own_message_and_esc_cancels(
    live_server, clients, open_pane, qtbot
) -> None:
    a, _b, cid = await chat(live_server, clients)
    await a.send_message(cid, "my latest")
    await a.wait_synced(15)
    pane = await open_pane(a, cid)
    await wait_until(lambda: len(rows(pane)) == 3, "three messages shown")
    composer = pane.composer
    composer.setFocus()
    composer.setPlainText("a draft")
    qtbot.keyClick(composer, Qt.Key.Key_Up)  # not empty: Up only moves the cursor
    assert pane.message_actions.editing() is None
    composer.clear()
    qtbot.keyClick(composer, Qt.Key.Key_Up)
    latest = next(m for m in rows(pane) if m.body == "my latest")
    assert pane.message_actions.editing() == latest.id
    bar = pane.message_actions.bar
    assert bar.editor.toPlainText() == "my latest"
    assert pane.messages.currentIndex().data(MessageListModel.ViewRole).id == latest.id
    bar.editor.setPlainText("never mind")
    qtbot.keyClick(bar.editor, Qt.Key.Key_Escape)
    assert pane.message_actions.editing() is None and not bar.isVisible()
    assert pane.composer.isVisible() and pane.composer.hasFocus()
    assert [m.body for m in rows(pane)][-1] == "my latest"
    assert not a.outbox()
    # The draft is untouched by editing (nothing of the edit leaks into it).
    composer.setPlainText("kept draft")
    qtbot.keyClick(composer, Qt.Key.Key_End)
    assert composer.toPlainText() == "kept draft"


async def test_delete_asks_then_the_message_disappears_everywhere(
    live_server, clients, open_pane, qtbot
) -> None:
    a, b, cid = await chat(live_server, clients)
    a2 = await clients(live_server.url, "alice", "d2")  # another device of hers
    await wait_until(lambda: len(a2.messages(cid)) == 2, "her other device to have both")
    pane = await open_pane(a, cid)
    bob_pane = await open_pane(b, cid)
    await wait_until(lambda: len(rows(pane)) == 2 and len(rows(bob_pane)) == 2, "both shown")
    answers: list[bool] = [False, True]
    pane.message_actions.confirm = lambda _parent: answers.pop(0)
    view = pane.messages
    view.setFocus()
    view.setCurrentIndex(index_of(pane, "first from alice"))
    qtbot.keyClick(view, Qt.Key.Key_Menu)
    trigger(pane, "Delete…")  # asked, and the answer was No
    assert [m.body for m in rows(pane)] == ["first from alice", "and one from bob"]
    view.setCurrentIndex(index_of(pane, "first from alice"))
    qtbot.keyClick(view, Qt.Key.Key_Delete)  # asked again: Yes
    assert answers == []
    await wait_until(
        lambda: [m.body for m in rows(pane)] == ["and one from bob"], "gone at once here"
    )
    await a.wait_synced(15)
    await wait_until(
        lambda: [m.body for m in rows(bob_pane)] == ["and one from bob"], "gone at bob's"
    )
    await wait_until(lambda: [m.body for m in a2.messages(cid)] == ["and one from bob"], "d2")
    # Bob's message has no Delete for her; the Delete key does nothing there.
    view.setCurrentIndex(index_of(pane, "and one from bob"))
    qtbot.keyClick(view, Qt.Key.Key_Delete)
    assert [m.body for m in rows(pane)] == ["and one from bob"]


async def test_an_edit_in_progress_ends_when_the_message_is_deleted_elsewhere(
    live_server, clients, open_pane
) -> None:
    a, _b, cid = await chat(live_server, clients)
    a2 = await clients(live_server.url, "alice", "d2")
    await wait_until(lambda: len(a2.messages(cid)) == 2, "her other device to have both")
    pane = await open_pane(a, cid)
    await wait_until(lambda: len(rows(pane)) == 2, "both shown")
    mid = index_of(pane, "first from alice").data(MessageListModel.ViewRole).id
    assert pane.message_actions.edit(mid)
    await a2.delete_message(cid, mid)
    await a2.wait_synced(15)
    await wait_until(lambda: pane.message_actions.editing() is None, "the edit to end")
    assert pane.composer.isVisible() and len(rows(pane)) == 1


async def test_tab_goes_from_the_messages_to_the_edit_box(
    live_server, clients, open_pane, qtbot
) -> None:
    a, _b, cid = await chat(live_server, clients)
    pane = await open_pane(a, cid)
    await wait_until(lambda: len(rows(pane)) == 2, "both shown")
    view = pane.messages
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Tab)
    assert pane.composer.hasFocus()  # not editing: the composer, as before
    mid = index_of(pane, "first from alice").data(MessageListModel.ViewRole).id
    assert pane.message_actions.edit(mid)
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Tab)
    bar = pane.message_actions.bar
    assert bar.editor.hasFocus()
    for widget, name in [(bar, "Editing message"), (bar.cancel_button, "Cancel editing")]:
        assert widget.accessibleName() == name
    assert bar.save_button.accessibleName() == "Save edited message"
