"""Rows never move under the pointer: while it is over the conversation list, changes update rows
in place and new rows go to the end; when it leaves, every row moves to its place."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QPointF
from PySide6.QtGui import QEnterEvent
from PySide6.QtWidgets import QApplication

from core.model import ConversationView
from ui.conversation_list import ConversationListView
from ui.models import ConversationListModel


def view(i: int, updated: int, **kw: Any) -> ConversationView:
    fields: dict[str, Any] = dict(
        id=f"c{i}",
        title=f"Conversation {i}",
        pinned=False,
        creator="alice",
        members=("alice",),
        version=1,
        created_at=0,
        updated_at=updated,
        message_count=0,
        read_seq=0,
        unread=0,
    )
    fields.update(kw)
    return ConversationView(**fields)


def order(lv: ConversationListView) -> list[str]:
    model = lv.model()
    return [model.index(r, 0).data(ConversationListModel.IdRole) for r in range(model.rowCount())]


def titles(lv: ConversationListView) -> list[str]:
    model = lv.model()
    return [model.index(r, 0).data() for r in range(model.rowCount())]


def enter(lv: ConversationListView) -> None:
    pos = QPointF(10, 10)
    QApplication.sendEvent(lv, QEnterEvent(pos, pos, QPointF(lv.mapToGlobal(pos.toPoint()))))


def leave(lv: ConversationListView) -> None:
    QApplication.sendEvent(lv, QEvent(QEvent.Type.Leave))


def test_rows_hold_still_while_the_pointer_is_over_the_list(qtbot) -> None:
    model = ConversationListModel([view(i, 100 - i) for i in range(4)])  # c0 newest, first
    lv = ConversationListView(model)
    qtbot.addWidget(lv)
    lv.show()
    assert order(lv) == ["c0", "c1", "c2", "c3"]
    moves, resets = [], []
    model.rowsMoved.connect(lambda *args: moves.append(args))
    model.modelReset.connect(lambda: resets.append(1))
    enter(lv)
    model.apply([view(3, 200, title="News in 3")], [])  # newest now: would go to the top
    model.apply([view(9, 300, title="Brand new")], [])  # a new conversation: the end, for now
    model.apply([view(2, 50, pinned=True)], [])  # pinned: would go to the top too
    assert order(lv) == ["c0", "c1", "c2", "c3", "c9"]
    assert titles(lv)[3] == "News in 3"  # changed where it is
    model.apply([], ["c1"])  # a deleted conversation goes at once, even while held
    assert order(lv) == ["c0", "c2", "c3", "c9"] and moves == []
    leave(lv)
    assert order(lv) == ["c2", "c9", "c3", "c0"]  # pinned, then newest first
    assert 1 <= len(moves) <= 3 and resets == []  # each row moved at most once, no reset
    model.apply([view(0, 400)], [])  # no longer held: moves at once
    assert order(lv) == ["c2", "c0", "c9", "c3"]
    # The user's own change (pending: a pin from the context menu, a message sent) moves at
    # once even while held: they expect it; a remote one waits.
    enter(lv)
    model.apply([view(3, 500, pinned=True, pending=True)], [])
    model.apply([view(9, 600)], [])
    assert order(lv) == ["c3", "c2", "c0", "c9"]
    leave(lv)
    assert order(lv) == ["c3", "c2", "c9", "c0"]


def test_two_lists_of_one_model_and_a_hidden_list_release_the_hold(qtbot) -> None:
    model = ConversationListModel([view(i, 100 - i) for i in range(3)])
    first, second = ConversationListView(model), ConversationListView(model)
    for lv in (first, second):
        qtbot.addWidget(lv)
        lv.show()
    enter(first)
    enter(second)
    enter(second)  # a repeated Enter holds once
    model.apply([view(2, 200)], [])
    leave(first)
    assert order(second) == ["c0", "c1", "c2"]  # the pointer is still over the second list
    second.hide()  # its window closed with the pointer over it: the hold goes with it
    assert order(first) == ["c2", "c0", "c1"]
    assert not second.order_hold.holding
    # A list destroyed while held releases it too.
    third = ConversationListView(model)
    enter(third)
    model.apply([view(0, 300)], [])
    assert order(first)[0] == "c2"
    third.deleteLater()
    qtbot.waitUntil(lambda: order(first)[0] == "c0", timeout=2000)
