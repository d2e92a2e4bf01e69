"""Window titles carry the unread total ("(3) Concord"), and a main window 360 px wide still
shows every control (the title elided, nothing cut off or hidden)."""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

from tests.support.waiting import wait_until


async def test_titles_carry_the_unread_total(live_server, clients, manager_for) -> None:  # type: ignore[no-untyped-def]
    alice = await clients(live_server.url, "alice", "desk")
    bob = await clients(live_server.url, "bob", "phone")
    conv = await bob.create_conversation("news", ["alice"])
    other = await bob.create_conversation("other", ["alice"])
    await bob.wait_synced(10)
    await wait_until(lambda: alice.conversation(other.id), what="alice sees the conversations")
    m = manager_for(alice)
    main = m.open_main_window()
    pop = m.open_conversation_window(other.id)
    assert main.windowTitle() == "Concord" and pop.windowTitle() == "other — Concord"
    for i in range(3):
        await bob.send_message(conv.id, f"n{i}")
    await bob.wait_synced(10)
    await wait_until(lambda: main.windowTitle() == "(3) Concord", what="(3) in the main title")
    assert pop.windowTitle() == "(3) other — Concord"
    main.activateWindow()
    main.open_conversation(conv.id)
    await wait_until(lambda: main.windowTitle() == "Concord", what="read: no count in the title")
    assert pop.windowTitle() == "other — Concord"


async def test_nothing_disappears_at_360_px(live_server, clients, manager_for, qtbot) -> None:  # type: ignore[no-untyped-def]
    alice = await clients(live_server.url, "alice", "desk")
    conv = await alice.create_conversation("A conversation with a long title " * 3)
    await alice.wait_synced(10)
    m = manager_for(alice)
    main = m.open_main_window(conv.id)
    main.resize(360, 600)
    main.show()
    qtbot.waitExposed(main)
    await wait_until(lambda: main.width() <= 380, what="the window is narrow")
    pane = main.pane
    controls: list[QWidget] = [
        main.list_view,
        pane.title_label,
        pane.rename_button,
        pane.pin_button,
        pane.delete_button,
        pane.messages,
        pane.composer,
        pane.send_button,
    ]
    window = main.rect()
    for w in controls:
        top_left = w.mapTo(main, w.rect().topLeft())
        bottom_right = w.mapTo(main, w.rect().bottomRight())
        name = w.accessibleName() or w.objectName() or type(w).__name__
        assert w.isVisible() and w.width() >= 24, f"{name} is hidden or squeezed: {w.width()}"
        assert window.contains(top_left) and window.contains(bottom_right), f"{name} is cut off"
    for button in (pane.rename_button, pane.pin_button, pane.delete_button, pane.send_button):
        assert button.width() >= button.minimumSizeHint().width(), button.text()
    assert pane.title_label.elided_text().endswith("…")
