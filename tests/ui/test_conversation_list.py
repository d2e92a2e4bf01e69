"""The conversation list view: rows follow remote changes with fine-grained updates, the delegate
draws the unread pill and markers, and every user action becomes the right signal."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPalette
from PySide6.QtWidgets import QLineEdit, QStyle, QStyleOptionViewItem

from core.model import ConversationView
from tests.support.waiting import wait_until
from ui.bridge import ClientBridge
from ui.conversation_delegate import ConversationDelegate, badge_text
from ui.conversation_list import ConversationListView
from ui.models import ConversationListModel
from ui.theme import ink


def view(i: int, updated: int = 0, **kw: Any) -> ConversationView:
    fields: dict[str, Any] = dict(
        id=f"c{i}",
        title=f"Conversation {i}",
        pinned=False,
        creator="alice",
        members=("alice",),
        version=1,
        created_at=0,
        updated_at=updated or i,
        message_count=0,
        read_seq=0,
        unread=0,
    )
    fields.update(kw)
    return ConversationView(**fields)


def make_view(qtbot, views: list[ConversationView], **kw: Any) -> ConversationListView:
    lv = ConversationListView(ConversationListModel(views), **kw)
    qtbot.addWidget(lv)
    lv.resize(320, 400)
    return lv


def recorder(signal) -> list[tuple]:  # type: ignore[no-untyped-def]
    seen: list[tuple] = []
    signal.connect(lambda *args: seen.append(args))
    return seen


def paint_row(lv: ConversationListView, row: int, dpr: float = 2.0) -> tuple[QImage, Any]:
    """Render one row with the delegate into a high-DPI image; returns it and the row layout."""
    index = lv.model().index(row, 0)
    opt = QStyleOptionViewItem()
    opt.initFrom(lv)
    opt.rect = lv.visualRect(index).translated(0, -lv.visualRect(index).top())
    opt.state |= QStyle.StateFlag.State_Enabled | QStyle.StateFlag.State_Active
    size = opt.rect.size()
    image = QImage(size * dpr, QImage.Format.Format_ARGB32_Premultiplied)
    image.setDevicePixelRatio(dpr)
    image.fill(lv.palette().color(QPalette.ColorRole.Base))
    painter = QPainter(image)
    lv.delegate.paint(painter, opt, index)
    painter.end()
    return image, lv.delegate.row_layout(opt, index)


def color_at(image: QImage, x: float, y: float) -> QColor:
    dpr = image.devicePixelRatio()
    return image.pixelColor(round(x * dpr), round(y * dpr))


def test_badge_text() -> None:
    assert [badge_text(n) for n in (0, -1, 1, 99, 100, 120)] == ["", "", "1", "99", "99+", "99+"]


def test_delegate_draws_pill_and_markers_at_high_dpi(qtbot) -> None:
    lv = make_view(
        qtbot,
        [view(1, unread=120, pinned=True, failed=True), view(2, pending=True), view(3)],
    )
    lv.show()
    # Two lines (title, preview) beside an avatar, as in Telegram or Element.
    assert 48 <= lv.delegate.sizeHint(QStyleOptionViewItem(), QModelIndex()).height() <= 72
    rows = lv.source_model().row_of
    image, lay = paint_row(lv, rows("c1"))
    assert lay.badge_text == "99+" and lay.badge is not None
    assert lay.pin is not None and lay.failed is not None and lay.pending is None
    # Inside the pill's left cap (clear of the text) the pill colour is drawn.
    b: QRectF = lay.badge
    accent = ink(lv.palette()).accent
    pixel = color_at(image, b.left() + b.height() * 0.25, b.center().y())
    assert abs(pixel.red() - accent.red()) + abs(pixel.blue() - accent.blue()) < 40, pixel.name()
    assert lay.title.right() < b.left()  # the title is elided before the pill
    _, pending = paint_row(lv, rows("c2"))
    assert pending.pending is not None and pending.badge is None and pending.badge_text == ""
    plain_image, plain = paint_row(lv, rows("c3"))
    assert (plain.badge, plain.pin, plain.pending, plain.failed) == (None, None, None, None)
    base = lv.palette().color(QPalette.ColorRole.Base)
    assert color_at(plain_image, b.left() + b.height() * 0.25, b.center().y()) == base


async def test_remote_rename_updates_the_row_with_data_changed_only(
    live_server, clients, qtbot
) -> None:
    a = await clients(live_server.url, "alice", "d1")
    b = await clients(live_server.url, "bob", "d1")
    made = [await a.create_conversation(f"topic {i}", ["bob"]) for i in range(3)]
    await a.wait_synced(15)
    await wait_until(lambda: len(b.conversations()) == 3, what="bob sees 3 conversations")
    bridge = ClientBridge(b)
    model = ConversationListModel(b.conversations())
    bridge.conversationsChanged.connect(model.apply)
    lv = ConversationListView(model)
    qtbot.addWidget(lv)
    lv.show()
    target = made[0].id
    lv.select(made[1].id)
    events: dict[str, list[tuple]] = {
        name: recorder(getattr(model, name))
        for name in ("dataChanged", "rowsInserted", "rowsRemoved", "modelReset", "layoutChanged")
    }
    await a.rename_conversation(target, "renamed by alice")
    await wait_until(
        lambda: model.view(model.row_of(target)).title == "renamed by alice",
        what="bob's row renamed",
    )
    assert events["dataChanged"]
    assert not any(
        events[n] for n in ("rowsInserted", "rowsRemoved", "modelReset", "layoutChanged")
    )
    row = model.row_of(target)
    assert lv.model().index(row, 0).data() == "renamed by alice"
    assert lv.selected_id() == made[1].id
    bridge.close()


async def test_unconfirmed_create_shows_the_pending_marker(live_server, clients, qtbot) -> None:
    offline = await clients(live_server.url, "carol", "d1", sync=False)
    bridge = ClientBridge(offline)
    model = ConversationListModel(offline.conversations())
    bridge.conversationsChanged.connect(model.apply)
    lv = ConversationListView(model)
    qtbot.addWidget(lv)
    lv.show()
    created = await offline.create_conversation("not yet on the server")
    await wait_until(lambda: model.row_of(created.id) is not None, what="pending row")
    row = model.row_of(created.id)
    assert model.index(row).data(ConversationListModel.PendingRole) is True
    _, lay = paint_row(lv, row)
    assert lay.pending is not None
    font = lv.delegate.title_font(QStyleOptionViewItem(), lv.model().index(row, 0))
    assert font.italic()
    bridge.close()


def test_selection_survives_moves_and_inserts(qtbot) -> None:
    lv = make_view(qtbot, [view(i) for i in range(6)])
    model = lv.source_model()
    assert lv.select("c1")
    assert model.row_of("c1") == 4  # newest first: c5..c0
    model.upsert(view(1, updated=100))  # moves to the top
    assert model.row_of("c1") == 0 and lv.selected_id() == "c1"
    assert lv.currentIndex().row() == 0
    model.upsert(view(9, updated=200))  # inserted above it
    model.upsert(view(3, pinned=True))  # pinned: moves above everything
    assert model.row_of("c1") == 2 and lv.selected_id() == "c1"
    model.upsert(view(1, updated=100, title="renamed"))  # in place
    assert lv.selected_id() == "c1"
    assert not lv.select("missing")


def test_context_menu_actions_emit_the_right_signals(qtbot) -> None:
    answers: list[bool] = []
    asked: list[str] = []

    def confirm(_parent: Any, title: str) -> bool:
        asked.append(title)
        return answers.pop(0)

    lv = make_view(qtbot, [view(1), view(2, pinned=True)], confirm=confirm)
    sig = {
        name: recorder(getattr(lv, name))
        for name in ("openInNewWindowRequested", "pinRequested", "deleteRequested")
    }
    index = lv.model().index(lv.source_model().row_of("c1"), 0)
    menu = lv.context_menu(index)
    assert menu is not None
    actions = {a.objectName(): a for a in menu.actions() if a.objectName()}
    assert set(actions) == {"open_new_window", "rename", "pin", "delete"}
    assert actions["pin"].text() == "&Pin"
    actions["open_new_window"].trigger()
    actions["pin"].trigger()
    answers[:] = [False, True]
    actions["delete"].trigger()  # declined: nothing
    assert sig["deleteRequested"] == []
    actions["delete"].trigger()
    assert sig["openInNewWindowRequested"] == [("c1",)]
    assert sig["pinRequested"] == [("c1", True)]
    assert sig["deleteRequested"] == [("c1",)]
    assert asked == ["Conversation 1", "Conversation 1"]
    pinned = lv.context_menu(lv.model().index(lv.source_model().row_of("c2"), 0))
    assert pinned is not None
    unpin = next(a for a in pinned.actions() if a.objectName() == "pin")
    assert unpin.text() == "Un&pin"
    unpin.trigger()
    assert sig["pinRequested"][-1] == ("c2", False)
    assert lv.context_menu(QModelIndex()) is None
    # Told who the user is, the list offers Delete only on conversations they created.
    lv.me = "bob"
    menu = lv.context_menu(index)
    assert menu is not None
    assert not next(a for a in menu.actions() if a.objectName() == "delete").isEnabled()
    assert not lv.request_delete("c1") and asked == ["Conversation 1", "Conversation 1"]


def editor_of(lv: ConversationListView, cid: str) -> QLineEdit:
    editor = lv.indexWidget(lv.model().index(lv.source_model().row_of(cid), 0))
    assert isinstance(editor, QLineEdit)
    return editor


def test_f2_renames_inline_without_touching_the_model(qtbot) -> None:
    lv = make_view(qtbot, [view(1), view(2)])
    renames = recorder(lv.renameRequested)
    with qtbot.waitExposed(lv):
        lv.show()
    lv.select("c2")
    qtbot.keyClick(lv, Qt.Key.Key_F2)
    editor = editor_of(lv, "c2")
    assert editor is not None and editor.isVisible()
    assert editor.accessibleName() == "Conversation title"
    assert editor.text() == "Conversation 2"
    qtbot.keyClicks(editor, "Plans")  # replaces the selected text
    qtbot.keyClick(editor, Qt.Key.Key_Return)  # the delegate commits on the next event turn
    qtbot.waitUntil(lambda: renames == [("c2", "Plans")], timeout=2000)
    qtbot.waitUntil(lambda: lv.state() != lv.State.EditingState, timeout=2000)
    assert lv.source_model().view(lv.source_model().row_of("c2")).title == "Conversation 2"
    # Escape cancels; an unchanged or blank title is not a rename.
    lv.rename("c1")
    editor = editor_of(lv, "c1")
    qtbot.keyClicks(editor, "Nope")
    qtbot.keyClick(editor, Qt.Key.Key_Escape)
    lv.rename("c1")
    editor = editor_of(lv, "c1")
    editor.setText("   ")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: lv.state() != lv.State.EditingState, timeout=2000)
    assert renames == [("c2", "Plans")]


def test_click_enter_and_double_click(qtbot) -> None:
    lv = make_view(qtbot, [view(1), view(2)])
    opened = recorder(lv.openRequested)
    popped = recorder(lv.openInNewWindowRequested)
    with qtbot.waitExposed(lv):
        lv.show()
    rect = lv.visualRect(lv.model().index(1, 0))
    qtbot.mouseClick(lv.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert opened == [("c1",)] and lv.selected_id() == "c1"
    lv.select("c2")
    qtbot.keyClick(lv, Qt.Key.Key_Return)
    assert opened[-1] == ("c2",)
    qtbot.mouseDClick(lv.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert popped == [("c1",)]
    assert lv.accessibleName() == "Conversations"
    assert isinstance(lv.delegate, ConversationDelegate)
