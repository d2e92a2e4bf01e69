"""The main window with a screen reader and the keyboard: every control has an accessible name
and role (Qt's accessibility tree), every menu command has words and most a shortcut, and Tab
goes list → messages → composer (Shift+Tab back)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDialog, QLineEdit, QListView, QWidget

from desktop.windows import MainWindow
from tests.support.accessibility import describe, problems
from tests.support.waiting import wait_until


async def active(window: MainWindow) -> None:
    window.activateWindow()
    await wait_until(window.isActiveWindow, "window active")


async def tab(qtbot, backwards: bool = False) -> QWidget | None:  # type: ignore[no-untyped-def]
    before = QApplication.focusWidget()
    assert before is not None
    mods = Qt.KeyboardModifier.ShiftModifier if backwards else Qt.KeyboardModifier.NoModifier
    qtbot.keyClick(before, Qt.Key.Key_Backtab if backwards else Qt.Key.Key_Tab, mods)
    await wait_until(lambda: QApplication.focusWidget() is not before, "the focus moved")
    return QApplication.focusWidget()


async def test_names_roles_and_the_tab_cycle(live_server, clients, manager_for, qtbot) -> None:
    alice = await clients(live_server.url, "alice", "desk")
    conv = await alice.create_conversation("Design review")
    await alice.send_message(conv.id, "mockups are up")
    await alice.wait_synced(10)
    m = manager_for(alice)
    window = m.open_main_window(conv.id)
    await active(window)
    await wait_until(lambda: window.pane.messages.message_model().rowCount() == 1, "shown")
    assert problems(window) == []
    for top in window.menuBar().actions():
        menu = top.menu()
        assert top.text() and menu is not None
        for action in menu.actions():
            assert action.isSeparator() or action.text().replace("&", "").strip(), top.text()
    # Tab: list → messages → composer; Shift+Tab back.
    window.list_view.setFocus(Qt.FocusReason.TabFocusReason)
    await wait_until(window.list_view.hasFocus, "the list focused")
    assert await tab(qtbot) is window.pane.messages
    assert await tab(qtbot) is window.pane.composer
    assert await tab(qtbot, backwards=True) is window.pane.messages
    assert await tab(qtbot, backwards=True) is window.list_view
    # On from the composer, Tab reaches every control of the pane and comes back to the list;
    # each looks different while the keyboard is in it (visible focus).
    pane = window.pane
    wanted = [pane.send_button, pane.rename_button, pane.pin_button, pane.delete_button]
    await tab(qtbot)
    await tab(qtbot)
    assert QApplication.focusWidget() is pane.composer
    looks: dict[QWidget, object] = {}
    while (w := QApplication.focusWidget()) is not None and w not in looks and len(looks) < 20:
        looks[w] = w.grab().toImage()
        await tab(qtbot)
    assert all(b in looks for b in wanted), [describe(w) for w in looks]
    assert window.list_view in looks
    window.list_view.setFocus(Qt.FocusReason.TabFocusReason)
    await wait_until(window.list_view.hasFocus, "the list focused")
    for control in [pane.messages, pane.composer, *wanted]:
        assert control.grab().toImage() != looks[control], describe(control)
    pane.composer.setFocus(Qt.FocusReason.TabFocusReason)
    await wait_until(pane.composer.hasFocus, "the composer focused")
    assert window.list_view.grab().toImage() != looks[window.list_view]
    # Enter in the list opens the conversation and hands the keyboard to its composer.
    window.list_view.setFocus(Qt.FocusReason.TabFocusReason)
    qtbot.keyClick(window.list_view, Qt.Key.Key_Return)
    await wait_until(window.pane.composer.hasFocus, "the composer focused")
    # Ctrl+F's find bar in the pane, and Ctrl+K's search with results.
    if window.find_bar is not None:
        window.find_bar.open()
        assert problems(window) == []
    m.quick_switch(window)
    popup = await wait_until(lambda: visible_dialog(window), "the search popup")
    edit = popup.findChild(QLineEdit)
    assert edit is not None
    qtbot.keyClicks(edit, "design")
    await wait_until(lambda: popup.findChild(QListView).model().rowCount() > 0, "results")
    assert problems(popup) == []
    popup.close()


def visible_dialog(window: QWidget) -> QDialog | None:
    return next((d for d in window.findChildren(QDialog) if d.isVisible()), None)
