"""Screen readers and the keyboard: every control of the conversation list, the pane, the toasts
and every dialog has an accessible name and a sensible role in Qt's accessibility tree, and
every control can be reached with Tab."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QLineEdit, QWidget

from core.bus import PreferenceStore
from core.model import Conflict
from tests.support.accessibility import interactive, problems
from tests.support.waiting import wait_until
from ui.bridge import ClientBridge
from ui.conversation_list import ConversationListView
from ui.conversation_pane import ConversationPane
from ui.dialogs import ConflictDialog, LoginDialog, SettingsDialog
from ui.inspector import SyncInspector
from ui.models import ConversationListModel
from ui.search_popup import SearchPopup
from ui.toasts import ToastArea


def not_by_tab(root: QWidget) -> list[str]:
    """Interactive controls Tab never reaches (enabled ones: a disabled control is skipped)."""
    return [
        f"{type(w).__name__}({w.accessibleName() or w.objectName()!r})"
        for w in [root, *root.findChildren(QWidget)]
        if interactive(w, root)
        and w.isEnabled()
        and isinstance(w, QAbstractButton)
        and not isinstance(w.parentWidget(), QLineEdit)  # its clear button: the field does it
        and not w.focusPolicy() & Qt.FocusPolicy.TabFocus
    ]


def shown(qtbot, widget: QWidget) -> QWidget:  # type: ignore[no-untyped-def]
    qtbot.addWidget(widget)
    widget.show()
    return widget


async def test_the_list_the_pane_and_a_toast(live_server, clients, qtbot) -> None:
    alice = await clients(live_server.url, "alice", "desk")
    conv = await alice.create_conversation("Design review")
    await alice.send_message(conv.id, "mockups are up")
    await alice.wait_synced(10)
    bridge = ClientBridge(alice)
    try:
        lv = shown(qtbot, ConversationListView(ConversationListModel(alice.conversations())))
        pane = shown(qtbot, ConversationPane(alice, bridge))
        pane.resize(520, 400)
        pane.show_conversation(conv.id)
        await wait_until(lambda: pane.messages.message_model().rowCount() == 1, "the message")
        area = ToastArea(pane)
        area.show_toast("“x” was deleted by bob", timeout_ms=0, action=("Copy text", lambda: 0))
        area.show_toast("Refused", "error")
        pane.start_rename()  # the inline title editor, shown
        for root in (lv, pane):
            assert problems(root) == [], root
            assert not_by_tab(root) == []
        pane.cancel_rename()
        # The pane's buttons say what they do to a screen reader (not only "Pin", "Delete…").
        names = {pane.pin_button.accessibleName(), pane.delete_button.accessibleName()}
        assert names == {"Pin conversation", "Delete conversation"}
        # Rows read as their title and state, not as an empty item.
        index = lv.model().index(0, 0)
        assert index.data(Qt.ItemDataRole.AccessibleTextRole).startswith("Design review")
    finally:
        bridge.close()


async def test_every_dialog(live_server, clients, qtbot) -> None:
    alice = await clients(live_server.url, "alice", "desk")
    conv = await alice.create_conversation("Lunch on Friday")
    await alice.wait_synced(10)
    prefs = PreferenceStore({"theme": "system", "notifications": True, "remote_toasts": False})
    conflict = Conflict(conv.id, {"title": "Lunch on Saturday"}, None, 1, (1,))
    dialogs: list[QWidget] = [
        SettingsDialog(prefs),
        LoginDialog("https://chat.example.org", "alice", "Wrong password", keyring_problem="x"),
        ConflictDialog(conflict),
        SearchPopup(alice),
        SyncInspector(alice),
    ]
    for dialog in dialogs:
        shown(qtbot, dialog)
        assert problems(dialog) == [], dialog.windowTitle()
        assert not_by_tab(dialog) == [], dialog.windowTitle()
        dialog.hide()  # closing deletes some of them before qtbot's teardown closes them


def test_the_checker_finds_a_nameless_control(qtbot) -> None:
    """The walk itself can fail: an icon-only button with no name, a focusable plain widget."""
    from PySide6.QtWidgets import QHBoxLayout, QToolButton

    root = QWidget()
    layout = QHBoxLayout(root)
    nameless = QToolButton()
    layout.addWidget(nameless)
    custom = QWidget()
    custom.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    custom.setAccessibleName("A custom control")
    layout.addWidget(custom)
    shown(qtbot, root)
    found = problems(root)
    assert any("QToolButton" in p and "no accessible name" in p for p in found), found
    assert any("role Client" in p for p in found), found
