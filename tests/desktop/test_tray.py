"""The tray icon as a user clicks it: left click shows and raises the last active main window
(in whichever process of the device it lives), right click shows the menu and opens nothing.
Two app processes are two ``AppInstance`` members of one real app bus here; the test with real
``concord`` processes (the icon moving to another process) is in test_separate_process.py."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QApplication, QSystemTrayIcon, QWidget

from desktop.instance import AppInstance
from desktop.presence import Presence
from desktop.tray import Tray
from tests.support.waiting import wait_until
from ui.dialogs import SettingsDialog

Reason = QSystemTrayIcon.ActivationReason


async def focus_elsewhere() -> QWidget:
    """Another application's window takes the focus."""
    elsewhere = QWidget()
    elsewhere.show()
    elsewhere.activateWindow()
    await wait_until(elsewhere.isActiveWindow, what="focus on another application")
    return elsewhere


async def test_left_click_raises_the_last_active_main_window(
    live_server, clients, manager_for
) -> None:
    alice = await clients(live_server.url, "alice", "desk")
    m = manager_for(alice)
    presence = Presence(m)
    tray = Tray(m, m.prefs, presence)
    shown: list[str] = []
    tray.shown.connect(shown.append)
    a, b = m.open_main_window(), m.open_main_window()
    a.activateWindow()
    await wait_until(lambda: a.isActiveWindow() and a.active_at > b.active_at, what="A active")
    elsewhere = await focus_elsewhere()
    a.showMinimized()
    for _ in range(2):  # two clicks: still two windows, and A (not the newer B) comes back
        tray.icon.activated.emit(Reason.Trigger)
        await wait_until(lambda: shown, what="the click handled")
        assert shown.pop() == "here"
        await wait_until(a.isActiveWindow, what="A raised and focused")
        assert not a.isMinimized()
        assert len(m.windows) == 2
    elsewhere.close()
    presence.close()
    tray.close()


async def test_right_click_shows_the_menu_and_opens_nothing(
    live_server, clients, manager_for
) -> None:
    alice = await clients(live_server.url, "alice", "desk")
    m = manager_for(alice)
    quits: list[bool] = []
    m.on_quit = lambda: quits.append(True)
    presence = Presence(m)
    tray = Tray(m, m.prefs, presence)
    m.open_main_window()
    for reason in (Reason.Context, Reason.Context, Reason.MiddleClick):
        tray.icon.activated.emit(reason)  # handled at once: nothing is opened later either
    assert len(m.windows) == 1 and not tray.busy()
    menu = tray.icon.contextMenu()
    assert menu is tray.menu
    labels = [a.text().replace("&", "") for a in menu.actions() if not a.isSeparator()]
    assert labels == ["Open Concord", "New Window", "Settings…", "Quit"]
    actions = {a.text().replace("&", ""): a for a in menu.actions()}
    actions["New Window"].trigger()
    assert len(m.windows) == 2
    actions["Settings…"].trigger()
    await wait_until(
        lambda: any(
            isinstance(w, SettingsDialog) and w.isVisible() for w in QApplication.topLevelWidgets()
        ),
        what="the settings dialog",
    )
    actions["Quit"].trigger()
    assert quits == [True]
    for w in QApplication.topLevelWidgets():
        if isinstance(w, SettingsDialog):
            w.close()
    tray.close()
    presence.close()


async def test_left_click_opens_a_window_only_when_there_is_none(
    live_server, clients, manager_for
) -> None:
    alice = await clients(live_server.url, "alice", "desk")
    m = manager_for(alice)
    presence = Presence(m)
    tray = Tray(m, m.prefs, presence)
    shown: list[str] = []
    tray.shown.connect(shown.append)
    tray.icon.activated.emit(Reason.Trigger)
    await wait_until(lambda: shown == ["opened"], what="a window opened")
    tray.icon.activated.emit(Reason.Trigger)
    await wait_until(lambda: len(shown) == 2, what="the second click")
    assert shown == ["opened", "here"] and len(m.windows) == 1
    tray.close()
    presence.close()


async def test_tooltip_and_icon_carry_the_unread_total(live_server, clients, manager_for) -> None:
    alice = await clients(live_server.url, "alice", "desk")
    bob = await clients(live_server.url, "bob", "phone")
    conv = await bob.create_conversation("news", ["alice"])
    for i in range(3):
        await bob.send_message(conv.id, f"n{i}")
    await bob.wait_synced(10)
    m = manager_for(alice)
    presence = Presence(m)
    tray = Tray(m, m.prefs, presence)
    await wait_until(lambda: tray.unread == 3, what="3 unread")
    assert tray.icon.toolTip() == "Concord — 3 unread"
    assert not tray.icon.icon().isNull()
    tray.close()
    presence.close()


async def test_a_click_raises_the_window_of_another_process(
    live_server, clients, manager_for, runtime_dir, tmp_path: Path
) -> None:
    """Process 1 owns the tray and has no window; process 2's main window was active last:
    the click raises that one (over the app bus), and opens nothing."""
    alice = await clients(live_server.url, "alice", "desk")
    one = await AppInstance.open("tray-test", Path(runtime_dir))
    two: AppInstance | None = await AppInstance.open("tray-test", Path(runtime_dir))
    assert one.primary and not two.primary
    m1, m2 = manager_for(alice, "one"), manager_for(alice, "two")
    p1, p2 = Presence(m1, one), Presence(m2, two)
    tray = Tray(m1, m1.prefs, p1, owner=one.primary)
    shown: list[str] = []
    tray.shown.connect(shown.append)
    try:
        theirs = m2.open_main_window()
        await wait_until(theirs.isActiveWindow, what="process 2's window active")
        await wait_until(
            lambda: p1.any_active() and not p1.local_active(),
            what="process 1 knows a window of the device is active",
        )
        elsewhere = await focus_elsewhere()
        await wait_until(lambda: not p1.any_active(), what="no Concord window active")
        tray.icon.activated.emit(Reason.Trigger)
        await wait_until(lambda: shown, what="the click handled")
        assert shown == ["elsewhere"]
        await wait_until(theirs.isActiveWindow, what="process 2's window raised")
        assert m1.windows == [] and len(m2.windows) == 1
        # The tray's Quit quits every process of the device.
        quits: list[str] = []
        m1.on_quit, m2.on_quit = (lambda: quits.append("one")), (lambda: quits.append("two"))
        tray.menu.actions()[-1].trigger()
        await wait_until(lambda: sorted(quits) == ["one", "two"], what="both processes quit")
        # Process 2 goes away: the next click opens a window in process 1.
        theirs.close()
        p2.close()
        await two.close()
        two = None
        await wait_until(lambda: not p1.peers, what="process 2 forgotten")
        tray.icon.activated.emit(Reason.Trigger)
        await wait_until(lambda: len(shown) == 2, what="the second click")
        assert shown[1] == "opened" and len(m1.windows) == 1
        elsewhere.close()
    finally:
        tray.close()
        p1.close()
        p2.close()
        await one.close()
        if two is not None:
            await two.close()
