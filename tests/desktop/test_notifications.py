"""Notifications as a user meets them: "Show a notice when a conversation changes elsewhere"
names each rename, pin and delete made on another device — as a desktop notification while no
Concord window is active, as a toast in the active window otherwise — and no notification fires
while any Concord window or dialog of the device is active, in any process."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QWidget

from desktop.instance import AppInstance
from desktop.notices import ChangeNotices
from desktop.presence import Presence
from desktop.tray import Tray
from tests.support.waiting import wait_until
from ui.dialogs import SettingsDialog


async def focus_elsewhere() -> QWidget:
    """Another application's window takes the focus."""
    elsewhere = QWidget()
    elsewhere.show()
    elsewhere.activateWindow()
    await wait_until(elsewhere.isActiveWindow, what="focus on another application")
    return elsewhere


class Shell:
    """One process's presence, tray and notices (as desktop.shell wires them)."""

    def __init__(self, manager, instance: AppInstance | None = None) -> None:  # type: ignore[no-untyped-def]
        self.presence = Presence(manager, instance)
        self.tray = Tray(manager, manager.prefs, self.presence)
        self.notices = ChangeNotices(manager, self.presence, self.tray, manager.prefs)
        self.notes: list[tuple[str, str]] = []
        self.tray.notified.connect(lambda title, text: self.notes.append((title, text)))

    def close(self) -> None:
        self.notices.close()
        self.tray.close()
        self.presence.close()


async def test_changes_on_another_device_are_notified(live_server, clients, manager_for) -> None:
    alice = await clients(live_server.url, "alice", "desk")
    phone = await clients(live_server.url, "alice", "phone")
    bob = await clients(live_server.url, "bob", "laptop")
    conv = await bob.create_conversation("Design", ["alice"])
    await bob.wait_synced(10)
    await wait_until(lambda: phone.conversation(conv.id), what="alice's phone sees it")
    m = manager_for(alice)
    m.prefs.set("remote_toasts", True)
    shell = Shell(m)
    m.open_main_window()
    await wait_until(lambda: alice.conversation(conv.id), what="alice's desk sees it")
    elsewhere = await focus_elsewhere()
    try:
        await bob.rename_conversation(conv.id, "Design review")
        await wait_until(lambda: shell.notes, what="the rename notified")
        assert shell.notes.pop() == (
            "Conversation renamed",
            "“Design” was renamed to “Design review” on another device",
        )
        await phone.set_pinned(conv.id, True)
        await wait_until(lambda: shell.notes, what="the pin notified")
        assert shell.notes.pop() == (
            "Conversation pinned",
            "“Design review” was pinned on another device",
        )
        await bob.delete_conversation(conv.id)
        await wait_until(lambda: shell.notes, what="the delete notified")
        assert shell.notes.pop() == (
            "Conversation deleted",
            "“Design review” was deleted on another device",
        )
    finally:
        elsewhere.close()
        shell.close()


async def test_nothing_when_the_setting_is_off(live_server, clients, manager_for) -> None:
    alice = await clients(live_server.url, "alice", "desk")
    phone = await clients(live_server.url, "alice", "phone")
    conv = await phone.create_conversation("Design")
    await phone.wait_synced(10)
    m = manager_for(alice)
    assert not m.prefs.get("remote_toasts", False)
    shell = Shell(m)
    window = m.open_main_window()
    await wait_until(lambda: alice.conversation(conv.id), what="the desk sees it")
    elsewhere = await focus_elsewhere()
    await phone.rename_conversation(conv.id, "Design review")
    await wait_until(
        lambda: alice.conversation(conv.id).title == "Design review", what="the rename applied"
    )
    await wait_until(
        lambda: window.list_view.model().index(0, 0).data() == "Design review",
        what="the list shows it",
    )
    shell.notices.flush()
    assert shell.notes == [] and window.toasts is not None and window.toasts.texts() == []
    elsewhere.close()
    shell.close()


async def test_a_toast_instead_while_a_window_is_active(live_server, clients, manager_for) -> None:
    alice = await clients(live_server.url, "alice", "desk")
    phone = await clients(live_server.url, "alice", "phone")
    conv = await phone.create_conversation("Design")
    await phone.wait_synced(10)
    m = manager_for(alice)
    m.prefs.set("remote_toasts", True)
    shell = Shell(m)
    a, b = m.open_main_window(), m.open_main_window()
    await wait_until(lambda: alice.conversation(conv.id), what="the desk sees it")
    a.activateWindow()
    await wait_until(lambda: shell.presence.active_window() is a, what="A active")
    await phone.rename_conversation(conv.id, "Design review")
    text = "“Design” was renamed to “Design review” on another device"
    assert a.toasts is not None and b.toasts is not None
    await wait_until(lambda: text in a.toasts.texts(), what="a toast in the active window")
    assert shell.notes == [] and b.toasts.texts() == []
    # The user's own rename, in window A: no notification; window B says where it was made.
    a.list_view.renameRequested.emit(conv.id, "Plans")
    own = "“Design review” was renamed to “Plans” in another window"
    await wait_until(lambda: own in b.toasts.texts(), what="window B's toast")
    assert own not in a.toasts.texts() and shell.notes == []
    shell.close()


async def test_no_notification_while_a_dialog_of_another_process_is_active(
    live_server, clients, manager_for, runtime_dir
) -> None:
    alice = await clients(live_server.url, "alice", "desk")
    bob = await clients(live_server.url, "bob", "laptop")
    conv = await bob.create_conversation("ping", ["alice"])
    await bob.wait_synced(10)
    one = await AppInstance.open("notify-test", Path(runtime_dir))
    two = await AppInstance.open("notify-test", Path(runtime_dir))
    m1, m2 = manager_for(alice, "one"), manager_for(alice, "two")
    first, second = Shell(m1, one), Shell(m2, two)
    second.tray.set_owner(two.primary)  # as desktop.shell does: the leader owns the icon
    assert first.tray.owner and not second.tray.owner
    seen: list[str] = []
    m1.bridge.messagesAdded.connect(lambda _cid, ms: seen.extend(x.body for x in ms))
    try:
        m1.open_main_window()
        theirs = m2.open_main_window()
        await wait_until(lambda: alice.conversation(conv.id), what="alice sees it")
        dialog = SettingsDialog(m2.prefs, theirs)
        dialog.show()
        dialog.activateWindow()
        await wait_until(dialog.isActiveWindow, what="process 2's dialog active")
        await wait_until(
            lambda: first.presence.any_active() and not first.presence.local_active(),
            what="process 1 learns that a dialog of the device is active",
        )
        await bob.send_message(conv.id, "while the dialog is open")
        await wait_until(lambda: "while the dialog is open" in seen, what="the message arrived")
        assert first.notes == [] and second.notes == []
        dialog.close()
        elsewhere = await focus_elsewhere()
        await wait_until(lambda: not first.presence.any_active(), what="nothing active")
        await bob.send_message(conv.id, "now?")
        await wait_until(lambda: first.notes, what="the notification")
        assert first.notes == [("ping", "bob: now?")] and second.notes == []
        elsewhere.close()
    finally:
        first.close()
        second.close()
        await one.close()
        await two.close()


async def test_an_own_dialog_counts_as_active(live_server, clients, manager_for) -> None:
    alice = await clients(live_server.url, "alice", "desk")
    m = manager_for(alice)
    presence = Presence(m)
    window = m.open_main_window()
    elsewhere = await focus_elsewhere()
    assert not presence.any_active()
    dialog = SettingsDialog(m.prefs, window)
    dialog.show()
    dialog.activateWindow()
    await wait_until(presence.any_active, what="the dialog counts as a window of ours")
    assert presence.active_window() is window
    dialog.close()
    elsewhere.close()
    presence.close()
