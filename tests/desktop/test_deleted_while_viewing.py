"""A main window showing a conversation deleted on another device: the list highlights nothing,
the pane is empty, and a toast above the composer says so and offers the unsent text again."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtWidgets import QApplication

from desktop.notices import ChangeNotices
from desktop.presence import Presence
from desktop.tray import Tray
from desktop.windows import AppWindow, MainWindow
from tests.support.qt import focus
from tests.support.waiting import wait_until
from ui.gone import COPY_TEXT


def rect_in_window(window: AppWindow, widget) -> QRect:  # type: ignore[no-untyped-def]
    return QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())


async def test_a_window_says_who_deleted_it_and_keeps_the_draft(
    live_server, clients, manager_for, qtbot
) -> None:
    desk = await clients(live_server.url, "alice", "desk")
    phone = await clients(live_server.url, "alice", "phone")
    other = await desk.create_conversation("Release 2.4")
    conv = await desk.create_conversation("Lunch on Friday")
    await desk.wait_synced(10)
    await wait_until(lambda: phone.conversation(conv.id), "the phone sees it")
    m = manager_for(desk)
    window = m.open_main_window(conv.id)
    assert isinstance(window, MainWindow)
    lv = window.list_view
    await wait_until(lambda: lv.selected_id() == conv.id, "the list selects it")
    await focus(window.pane)
    qtbot.keyClicks(window.pane.composer, "see you at 12:45")
    await phone.delete_conversation(conv.id)
    area = window.toasts
    assert area is not None
    await wait_until(lambda: area.toasts(), "the toast")
    toast = area.toasts()[0]
    assert toast.text() == (
        "“Lunch on Friday” was deleted on another device — your unsent text was copied to the"
        " clipboard"
    )
    # Nothing else highlighted in the list (Qt would make the neighbour current), pane empty.
    assert lv.selected_id() is None and not lv.currentIndex().isValid()
    assert window.pane.conversation_id() is None and not window.pane.composer.isEnabled()
    assert lv.source_model().row_of(other.id) is not None
    # The toast sits above the composer, stays until dismissed, and offers the text again.
    assert (
        rect_in_window(window, area).bottom() < rect_in_window(window, window.pane.composer).top()
    )
    assert toast.timeout_ms == 0 and toast.button is not None
    assert toast.button.text() == COPY_TEXT and toast.button.accessibleName() == COPY_TEXT
    QApplication.clipboard().setText("something copied since")
    qtbot.mouseClick(toast.button, Qt.MouseButton.LeftButton)
    assert QApplication.clipboard().text() == "see you at 12:45"
    await wait_until(lambda: not area.toasts(), "the toast dismissed")


async def test_deleting_it_from_this_windows_list_is_not_deleted_elsewhere(
    live_server, clients, manager_for
) -> None:
    desk = await clients(live_server.url, "alice", "desk")
    conv = await desk.create_conversation("mine")
    m = manager_for(desk)
    window = m.open_main_window(conv.id)
    deleted: list[str] = []
    window.pane.conversationDeleted.connect(deleted.append)
    window.list_view.confirm = lambda _parent, _title: True
    assert window.list_view.request_delete(conv.id)
    await wait_until(lambda: deleted == [conv.id], "deleted here")
    assert window.toasts is not None and window.toasts.texts() == []
    assert window.list_view.selected_id() is None


async def test_with_notices_of_changes_elsewhere_it_is_said_once(
    live_server, clients, manager_for
) -> None:
    """ "Show a notice when a conversation changes elsewhere" names deletes too: the window whose
    pane showed the conversation says it once, not twice."""
    desk = await clients(live_server.url, "alice", "desk")
    phone = await clients(live_server.url, "alice", "phone")
    conv = await desk.create_conversation("Weekend hike")
    await desk.wait_synced(10)
    await wait_until(lambda: phone.conversation(conv.id), "the phone sees it")
    m = manager_for(desk)
    m.prefs.set("remote_toasts", True)
    presence = Presence(m, None)
    tray = Tray(m, m.prefs, presence)
    notices = ChangeNotices(m, presence, tray, m.prefs)
    try:
        window = m.open_main_window(conv.id)
        window.activateWindow()
        await wait_until(window.isActiveWindow, "active")
        await phone.delete_conversation(conv.id)
        assert window.toasts is not None
        toasts = window.toasts
        await wait_until(lambda: toasts.texts(), "the toast")
        notices.flush()  # whatever the notices would add, now
        assert toasts.texts() == ["“Weekend hike” was deleted on another device"]
    finally:
        notices.close()
        tray.close()
        presence.close()
