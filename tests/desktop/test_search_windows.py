"""Search as the app wires it: Ctrl+K in a main window opens the search popup, a message chosen
there opens its conversation scrolled to it; Ctrl+F opens the window's find bar; from a pop-out
window a result opens in a conversation window."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication

from desktop.windows import AppWindow, ConversationWindow, MainWindow
from tests.support.waiting import wait_until
from ui.search_popup import SearchPopup


def trigger(window: AppWindow, keys: QKeySequence) -> None:
    """The window's action for ``keys``, as the shortcut would trigger it."""
    action = next(a for a in window.actions() if a.shortcut() == keys)
    action.trigger()


def popup() -> SearchPopup:
    found = [w for w in QApplication.topLevelWidgets() if isinstance(w, SearchPopup)]
    assert len([w for w in found if w.isVisible()]) == 1
    return next(w for w in found if w.isVisible())


def selected(window: MainWindow | ConversationWindow) -> str | None:
    index = window.pane.messages.currentIndex()
    model = window.pane.messages.message_model()
    return model.message(index.row()).body if index.isValid() else None


async def test_ctrl_k_and_ctrl_f_in_the_windows(qtbot, live_server, clients, manager_for) -> None:  # type: ignore[no-untyped-def]
    alice = await clients(live_server.url, "alice", "desk")
    plans = await alice.create_conversation("Plans")
    other = await alice.create_conversation("Other")
    for i in range(260):
        await alice.send_message(plans.id, f"plan step {i}" + (" — budget" if i == 3 else ""))
    await alice.send_message(other.id, "budget talk elsewhere")
    await alice.wait_synced(30)
    m = manager_for(alice)
    window = m.open_main_window(other.id)

    trigger(window, QKeySequence("Ctrl+K"))
    search = popup()
    qtbot.keyClicks(search.edit, "budg")
    assert [r.text for r in search.rows() if r.kind == "message"] == [
        "budget talk elsewhere",
        "plan step 3 — budget",
    ]
    qtbot.keyClick(search.edit, Qt.Key.Key_Down)  # the second message hit
    assert search.current_row() is not None and search.current_row().text.startswith("plan")
    qtbot.keyClick(search.edit, Qt.Key.Key_Return)
    await wait_until(
        lambda: window.conversation_id() == plans.id and selected(window) == "plan step 3 — budget",
        what="the main window showing the old message, loaded from the cache",
    )

    trigger(window, QKeySequence(QKeySequence.StandardKey.Find))
    assert window.find_bar is not None and window.find_bar.isVisible()
    qtbot.keyClicks(window.find_bar.edit, "step 25")
    assert window.find_bar.count_text() == "1 of 11"  # 25 and 250-259
    await wait_until(lambda: selected(window) == "plan step 259", what="the newest match")

    pop = m.open_conversation_window(other.id)
    trigger(pop, QKeySequence("Ctrl+K"))
    search = popup()
    qtbot.keyClicks(search.edit, "plans")
    assert search.current_row() is not None and search.current_row().text == "Plans"
    qtbot.keyClick(search.edit, Qt.Key.Key_Return)
    await wait_until(
        lambda: any(
            isinstance(w, ConversationWindow) and w.conversation_id() == plans.id for w in m.windows
        ),
        what="a conversation window for the chosen conversation",
    )
