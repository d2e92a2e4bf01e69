"""Every window is a view of the one Client: what changes in one, or on another device, shows
in all of them; unread badges clear everywhere; layouts come back; conflicts ask the user."""

from __future__ import annotations

from PySide6.QtWidgets import QApplication, QWidget

from desktop.tray import Tray
from desktop.windows import ConversationWindow, MainWindow
from tests.support.waiting import wait_until


def titles(window: MainWindow) -> list[str]:
    model = window.list_view.model()
    return [model.index(r, 0).data() for r in range(model.rowCount())]


def pane_bodies(window: MainWindow | ConversationWindow) -> list[str]:
    model = window.pane.messages.message_model()
    return [model.message(r).body for r in range(model.rowCount())]


async def test_remote_changes_reach_every_window(live_server, clients, manager_for) -> None:
    alice = await clients(live_server.url, "alice", "desk")
    bob = await clients(live_server.url, "bob", "phone")
    conv = await bob.create_conversation("plans", ["alice"])
    await bob.wait_synced(10)
    await wait_until(lambda: alice.conversation(conv.id), what="alice sees it")
    m = manager_for(alice)
    a, b = m.open_main_window(conv.id), m.open_main_window()
    pop = m.open_conversation_window(conv.id)
    await bob.rename_conversation(conv.id, "plans for friday")
    await bob.send_message(conv.id, "who brings the cake?")
    await wait_until(lambda: titles(a) == titles(b) == ["plans for friday"], what="renamed rows")
    await wait_until(lambda: "plans for friday" in pop.windowTitle(), what="pop-out title")
    await wait_until(
        lambda: pane_bodies(a) == pane_bodies(pop) == ["who brings the cake?"],
        what="the message in the main window and the pop-out",
    )
    # A rename made in window A's list shows in window B.
    a.list_view.renameRequested.emit(conv.id, "picnic")
    await wait_until(lambda: titles(b) == ["picnic"], what="window B shows window A's rename")


async def test_unread_badge_clears_in_every_window(live_server, clients, manager_for) -> None:
    alice = await clients(live_server.url, "alice", "desk")
    alice_phone = await clients(live_server.url, "alice", "phone")
    bob = await clients(live_server.url, "bob", "phone")
    conv = await bob.create_conversation("news", ["alice"])
    for i in range(3):
        await bob.send_message(conv.id, f"n{i}")
    await bob.wait_synced(10)
    m = manager_for(alice)
    tray = Tray(m, m.prefs)
    a, b = m.open_main_window(), m.open_main_window()
    await wait_until(
        lambda: m.list_model.total_unread() == 3 and tray.unread == 3,
        what="3 unread in the list and the tray badge",
    )
    row = m.list_model.row_of(conv.id)
    assert m.list_model.index(row).data(m.list_model.UnreadRole) == 3
    a.activateWindow()
    a.open_conversation(conv.id)
    await wait_until(
        lambda: m.list_model.total_unread() == 0 and tray.unread == 0,
        what="read in every window of this device",
    )
    await wait_until(lambda: alice_phone.unread(conv.id) == 0, what="and on alice's phone")
    assert b.list_view.model().rowCount() == 1
    tray.close()


async def test_layout_comes_back(live_server, clients, manager_for) -> None:
    alice = await clients(live_server.url, "alice", "desk")
    conv = await alice.create_conversation("keep me open")
    await alice.wait_synced(10)
    m = manager_for(alice, "layout")
    main = m.open_main_window()
    pop = m.open_conversation_window(conv.id)
    main.setGeometry(40, 50, 700, 500)
    pop.setGeometry(300, 120, 420, 380)
    await wait_until(lambda: main.width() == 700 and pop.width() == 420, what="resized")
    m.close_all()  # as on quit
    m2 = manager_for(alice, "layout")
    m2.restore_layout()
    kinds = sorted(w.kind for w in m2.windows)
    assert kinds == ["conversation", "main"]
    again = next(w for w in m2.windows if w.kind == "conversation")
    assert again.conversation_id() == conv.id
    assert (again.width(), again.height()) == (420, 380)
    main2 = next(w for w in m2.windows if w.kind == "main")
    assert (main2.width(), main2.height()) == (700, 500)


async def test_conflict_asks_the_user_and_keep_mine_wins(live_server, clients, manager_for) -> None:
    from tests.support.server_edits import rename_behind_our_back
    from ui.dialogs import ConflictDialog

    alice = await clients(live_server.url, "alice", "desk")
    m = manager_for(alice)
    conv = await alice.create_conversation("original")
    await alice.wait_synced(10)
    m.open_main_window(conv.id)
    live_server.stop()
    await wait_until(lambda: alice.status.state != "live", what="offline")
    rename_behind_our_back(live_server, conv.id, "theirs")
    await alice.rename_conversation(conv.id, "mine")
    live_server.restart()

    def dialog() -> ConflictDialog | None:
        found = [
            w
            for w in QApplication.topLevelWidgets()
            if isinstance(w, ConflictDialog) and w.isVisible()
        ]
        return found[0] if found else None

    shown = await wait_until(dialog, timeout=15, what="the conflict dialog")
    assert shown.rows["title"] == ("theirs", "mine")
    shown.keep_button.click()
    await wait_until(
        lambda: (
            alice.conversation(conv.id).title == "mine" and not alice.conversation(conv.id).pending
        ),
        timeout=15,
        what="keep mine applied",
    )
    snap = await live_server.snapshot("alice")
    assert [c["title"] for c in snap["conversations"]] == ["mine"]


async def test_notification_when_no_window_is_focused(live_server, clients, manager_for) -> None:
    alice = await clients(live_server.url, "alice", "desk")
    bob = await clients(live_server.url, "bob", "phone")
    conv = await bob.create_conversation("ping", ["alice"])
    await bob.wait_synced(10)
    m = manager_for(alice)
    tray = Tray(m, m.prefs)
    notes: list[tuple[str, str]] = []
    tray.notified.connect(lambda title, text: notes.append((title, text)))
    window = m.open_main_window()
    await wait_until(lambda: alice.conversation(conv.id), what="alice sees it")
    assert window.isVisible()
    elsewhere = QWidget()  # another application's window takes the focus
    elsewhere.show()
    elsewhere.activateWindow()
    await wait_until(
        lambda: elsewhere.isActiveWindow() and not m.any_focused(), what="focus elsewhere"
    )
    await bob.send_message(conv.id, "are you there?")
    seen: list = []
    m.bridge.messagesAdded.connect(lambda cid, ms: seen.append([x.body for x in ms]))
    await wait_until(
        lambda: notes, timeout=10, what="a notification", detail=lambda: (seen, m.any_focused())
    )
    assert notes == [("ping", "bob: are you there?")]
    tray.close()
    elsewhere.close()
