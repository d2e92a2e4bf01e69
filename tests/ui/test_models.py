"""The list models emit fine-grained changes (checked by Qt's own model tester)."""

from __future__ import annotations

import random

from PySide6.QtTest import QAbstractItemModelTester

from core.model import ConversationView, MessageView, sort_key
from ui.models import ConversationListModel, MessageListModel


def view(
    i: int, updated: int, pinned: bool = False, unread: int = 0, title: str = ""
) -> ConversationView:
    return ConversationView(
        id=f"c{i}",
        title=title or f"c{i}",
        pinned=pinned,
        creator="a",
        members=("a",),
        version=1,
        created_at=0,
        updated_at=updated,
        message_count=unread,
        read_seq=0,
        unread=unread,
    )


def test_random_upserts_keep_order_without_resets(qtbot) -> None:
    model = ConversationListModel([view(i, i) for i in range(50)])
    QAbstractItemModelTester(model, QAbstractItemModelTester.FailureReportingMode.Fatal)
    resets: list[int] = []
    model.modelReset.connect(lambda: resets.append(1))
    rng = random.Random(5)
    for step in range(500):
        i = rng.randrange(70)
        if rng.random() < 0.1:
            model.remove(f"c{i}")
        else:
            model.upsert(
                view(
                    i,
                    rng.randrange(1000),
                    pinned=rng.random() < 0.2,
                    unread=rng.randrange(3),
                    title=f"t{step}",
                )
            )
        views = [model.view(r) for r in range(model.rowCount())]
        assert [sort_key(v) for v in views] == sorted(sort_key(v) for v in views)
        assert all(model.row_of(v.id) == r for r, v in enumerate(views))
    assert not resets


def test_rename_is_one_data_changed(qtbot) -> None:
    model = ConversationListModel([view(i, i) for i in range(10)])
    changed, moved, inserted = [], [], []
    model.dataChanged.connect(lambda a, b: changed.append((a.row(), b.row())))
    model.rowsMoved.connect(lambda *a: moved.append(a))
    model.rowsInserted.connect(lambda *a: inserted.append(a))
    row = model.row_of("c3")
    model.upsert(view(3, 3, title="renamed"))
    assert changed == [(row, row)] and not moved and not inserted


def msg(mid: str, seq: int | None, created: int = 0) -> MessageView:
    return MessageView(mid, "c", seq, "a", mid, created, pending=seq is None)


def test_pending_message_is_replaced_in_place_by_the_server_copy(qtbot) -> None:
    model = MessageListModel([msg("a", 1), msg("b", 2)])
    QAbstractItemModelTester(model, QAbstractItemModelTester.FailureReportingMode.Fatal)
    assert model.upsert([msg("p", None, 5)]) == 1
    assert model.upsert([msg("c", 3)]) == 1  # a remote message lands before our pending one
    assert [model.message(r).id for r in range(4)] == ["a", "b", "c", "p"]
    assert model.upsert([msg("p", 4)]) == 0
    assert [(model.message(r).id, model.message(r).pending) for r in range(4)] == [
        ("a", False),
        ("b", False),
        ("c", False),
        ("p", False),
    ]


def test_a_reload_after_a_resync_removes_what_was_deleted_meanwhile(qtbot) -> None:
    # Older page a1..a2 loaded above the latest range b1..b4; b2 was deleted while this process
    # missed the news (a bus gap); p is a pending send.
    model = MessageListModel([msg("a1", 1), msg("a2", 2), msg("b1", 10), msg("b2", 11)])
    model.upsert([msg("b3", 12), msg("p", None, 5)])
    QAbstractItemModelTester(model, QAbstractItemModelTester.FailureReportingMode.Fatal)
    assert model.prune([msg("b1", 10), msg("b3", 12)]) == 1
    assert [model.message(r).id for r in range(model.rowCount())] == ["a1", "a2", "b1", "b3", "p"]
    assert model.prune([msg("b1", 10), msg("b3", 12)]) == 0  # nothing more is gone
    assert model.prune([]) == 4  # every cached message went: only the pending send stays
    assert [model.message(r).id for r in range(model.rowCount())] == ["p"]
