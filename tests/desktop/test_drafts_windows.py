"""Drafts and focus across windows: the list's selection follows the pane, Ctrl+N selects the
new conversation and puts the keyboard in its composer, Enter in the list opens and never
sends, a draft reaches the device's other process in under 300 ms, closing a window keeps what
was typed, and the draft of a conversation gone while no window shows it is still kept."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QInputDialog

from desktop.manager import RESCUE_MS
from desktop.windows import MainWindow
from tests.support.procs import ClientProc
from tests.support.qt import focus
from tests.support.waiting import wait_until
from ui.drafts import SAVE_MS, deleted_notice


async def active(window: MainWindow) -> None:
    window.activateWindow()
    await wait_until(window.isActiveWindow, what="window active")


def toasts(window: MainWindow) -> list[str]:
    area = window.toasts
    return [t.text() for t in getattr(area, "_toasts", [])] if area is not None else []


async def test_the_list_selection_follows_the_pane(live_server, clients, manager_for) -> None:
    a = await clients(live_server.url, "alice", "desk")
    b = await clients(live_server.url, "bob", "phone")
    one = await a.create_conversation("one")
    two = await b.create_conversation("two", ["alice"])
    await b.wait_synced(10)
    await wait_until(lambda: a.conversation(two.id), what="alice sees two")
    m = manager_for(a)
    window = m.open_main_window(one.id)
    lv = window.list_view
    await wait_until(lambda: lv.selected_id() == one.id, what="one selected")
    window.open_conversation(two.id)  # the Ctrl+K search, a notification, a restored layout
    assert lv.selected_id() == two.id
    window.pane.show_conversation(one.id)  # whatever makes the pane show a conversation
    assert lv.selected_id() == one.id
    window.pane.show_conversation(two.id)
    await b.delete_conversation(two.id)  # gone while shown: nothing stays selected
    await wait_until(lambda: window.pane.conversation_id() is None, what="pane left it")
    assert lv.selected_id() is None


def answer_input_dialog(text: str) -> None:
    """Type ``text`` into the next input dialog and press OK (as the user would)."""

    def fill() -> None:
        dialog = QApplication.activeModalWidget()
        if isinstance(dialog, QInputDialog):
            dialog.setTextValue(text)
            dialog.accept()
        else:
            QTimer.singleShot(10, fill)

    QTimer.singleShot(0, fill)


async def test_ctrl_n_selects_the_new_conversation_and_focuses_its_composer(
    live_server, clients, manager_for, qtbot
) -> None:
    a = await clients(live_server.url, "alice", "desk")
    old = await a.create_conversation("old")
    m = manager_for(a)
    window = m.open_main_window(old.id)
    await active(window)
    window.list_view.setFocus()  # where the user left the keyboard
    await wait_until(window.list_view.hasFocus, what="list focused")
    answer_input_dialog("fresh")
    # Outside any asyncio step, as a key press is: the dialog runs a nested event loop.
    ctrl_n = (Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    QTimer.singleShot(0, lambda: qtbot.keyClick(window.list_view, *ctrl_n))
    fresh = await wait_until(
        lambda: next((v for v in a.conversations() if v.title == "fresh"), None),
        what="the new conversation",
    )
    await wait_until(lambda: window.pane.conversation_id() == fresh.id, what="shown")
    await wait_until(lambda: window.list_view.selected_id() == fresh.id, what="and selected")
    await wait_until(window.pane.composer.hasFocus, what="keyboard in its composer")
    # So the first message typed goes where the user looks.
    qtbot.keyClicks(QApplication.focusWidget(), "first message")
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Return)
    await wait_until(
        lambda: [msg.body for msg in a.messages(fresh.id)] == ["first message"], what="sent there"
    )
    assert a.messages(old.id) == []


async def test_enter_in_the_list_opens_and_never_sends(
    live_server, clients, manager_for, qtbot
) -> None:
    a = await clients(live_server.url, "alice", "desk")
    first = await a.create_conversation("first")
    second = await a.create_conversation("second")
    m = manager_for(a)
    window = m.open_main_window(second.id)
    await active(window)
    lv = window.list_view
    await wait_until(lambda: lv.selected_id() == second.id, what="selected")
    lv.setFocus()
    await wait_until(lv.hasFocus, what="list focused")
    qtbot.keyClicks(lv, "zzz")  # typed into the list by mistake: nothing to send there
    qtbot.keyClick(lv, Qt.Key.Key_Return)
    assert window.pane.conversation_id() == second.id  # the selection: never switched back
    assert window.pane.composer.hasFocus()
    lv.setFocus()
    rows = [lv.model().index(r, 0).data(Qt.ItemDataRole.UserRole + 1) for r in range(2)]
    qtbot.keyClick(lv, Qt.Key.Key_Down if rows[0] == second.id else Qt.Key.Key_Up)
    assert lv.selected_id() == first.id
    qtbot.keyClick(lv, Qt.Key.Key_Enter)
    assert window.pane.conversation_id() == first.id and window.pane.composer.hasFocus()
    assert a.messages(first.id) == [] and a.messages(second.id) == []
    assert not [e for e in a.store.outbox() if e.op == "send"]


async def test_a_draft_reaches_the_devices_other_process_in_time(
    tmp_path: Path, live_server, clients, manager_for, qtbot
) -> None:
    a = await clients(live_server.url, "alice", "desk")
    conv = await a.create_conversation("mirrored")
    other = ClientProc(live_server.url, tmp_path / "alice-desk", tmp_path / "run", "alice")
    other = await other.start()  # a --separate-process window: same cache, same bus
    try:
        m = manager_for(a)
        window = m.open_main_window(conv.id)
        await focus(window.pane)
        qtbot.keyClicks(window.pane.composer, "typing in one window")
        typed = time.monotonic()
        got = await other.wait_event("draft_changed", cid=conv.id, text="typing in one window")
        assert got["t"] - typed < 0.3 + 0.2  # ≤ 300 ms, plus a margin for a loaded machine
        assert SAVE_MS < 300
    finally:
        await other.quit()


async def test_closing_a_window_saves_what_was_typed(
    live_server, clients, manager_for, qtbot
) -> None:
    a = await clients(live_server.url, "alice", "desk")
    conv = await a.create_conversation("quick")
    m = manager_for(a)
    window = m.open_main_window(conv.id)
    await focus(window.pane)
    qtbot.keyClicks(window.pane.composer, "typed just before closing")
    window.close()  # sooner than the periodic save
    assert a.draft(conv.id) == "typed just before closing"
    again = m.open_main_window(conv.id)
    assert again.pane.composer.toPlainText() == "typed just before closing"


async def test_a_draft_no_window_shows_is_kept_when_its_conversation_goes(
    live_server, clients, manager_for
) -> None:
    a = await clients(live_server.url, "alice", "desk")
    b = await clients(live_server.url, "bob", "phone")
    conv = await b.create_conversation("bob's plans", ["alice"])
    other = await a.create_conversation("elsewhere")
    await b.wait_synced(10)
    await wait_until(lambda: a.conversation(conv.id), what="alice sees it")
    a.set_draft(conv.id, "a reply I never sent")  # typed earlier; now another one is shown
    m = manager_for(a)
    window = m.open_main_window(other.id)
    await active(window)
    QApplication.clipboard().setText("")
    started = time.monotonic()
    await b.delete_conversation(conv.id)
    notice = deleted_notice("bob's plans")
    await wait_until(lambda: notice in toasts(window), what="the notice")
    assert time.monotonic() - started >= RESCUE_MS / 1000 * 0.9  # panes get the first go
    assert QApplication.clipboard().text() == "a reply I never sent"
    assert a.draft(conv.id) == "" and a.drafts() == {}


async def test_a_draft_of_a_conversation_deleted_while_the_app_was_closed_is_kept(
    live_server, clients, manager_for
) -> None:
    a = await clients(live_server.url, "alice", "desk")
    b = await clients(live_server.url, "bob", "phone")
    conv = await b.create_conversation("gone", ["alice"])
    await b.wait_synced(10)
    await wait_until(lambda: a.conversation(conv.id), what="alice sees it")
    a.set_draft(conv.id, "left behind")
    await a.close()  # the app is closed (or crashed) ...
    await b.delete_conversation(conv.id)  # ... while bob deletes the conversation
    await b.wait_synced(10)
    QApplication.clipboard().setText("")
    again = await clients(live_server.url, "alice", "desk")
    m = manager_for(again)
    window = m.open_main_window()
    await active(window)
    await wait_until(lambda: QApplication.clipboard().text() == "left behind", what="kept")
    assert again.conversation(conv.id) is None and again.drafts() == {}
    assert any("was deleted elsewhere" in t for t in toasts(window))


async def test_deleting_from_the_list_takes_the_draft_along(
    live_server, clients, manager_for
) -> None:
    a = await clients(live_server.url, "alice", "desk")
    conv = await a.create_conversation("mine")
    a.set_draft(conv.id, "never mind")
    m = manager_for(a)
    window = m.open_main_window()
    await active(window)
    QApplication.clipboard().setText("untouched")
    window.list_view.confirm = lambda _parent, _title: True
    assert window.list_view.request_delete(conv.id)
    await wait_until(lambda: a.conversation(conv.id) is None, what="deleted")
    assert a.draft(conv.id) == "" and QApplication.clipboard().text() == "untouched"


async def test_a_delete_that_does_not_happen_gives_the_draft_back(
    live_server, clients, manager_for
) -> None:
    from tests.support.server_edits import change_behind_our_back

    a = await clients(live_server.url, "alice", "desk")
    conflicts: list = []
    a.events.conflict.connect(conflicts.append)
    conv = await a.create_conversation("mine")
    await a.wait_synced(10)
    a.set_draft(conv.id, "half a thought")
    m = manager_for(a)
    window = m.open_main_window()
    await active(window)
    live_server.stop()
    await wait_until(lambda: a.status.state != "live", what="offline")
    change_behind_our_back(live_server, conv.id, 1, "renamed elsewhere")
    window.list_view.confirm = lambda _parent, _title: True
    assert window.list_view.request_delete(conv.id)
    await wait_until(lambda: a.conversation(conv.id) is None, what="gone from the list")
    live_server.restart()
    await wait_until(lambda: conflicts, timeout=15, what="the delete held by a conflict")
    await a.reload(conflicts[0])  # the user keeps the other change: no delete
    await wait_until(lambda: a.conversation(conv.id) is not None, what="back in the list")
    await wait_until(lambda: a.draft(conv.id) == "half a thought", what="the draft back")
