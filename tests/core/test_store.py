"""core.store: exactly-once apply with the cursor, delete detection, a durable outbox."""

from pathlib import Path

import msgspec

from core import protocol as p
from core.store import LocalStore

EPOCH = 7


def conv(cid: str, version: int = 1, count: int = 0, read: int = 0, title: str = "t"):
    return p.Conversation(
        id=cid,
        title=title,
        pinned=False,
        version=version,
        creator="alice",
        members=["alice", "bob"],
        created_at=1,
        updated_at=version,
        message_count=count,
        read_seq=read,
        unread=count - read,
    )


def change(seq: int, kind: str, entity: str, data: object, version: int = 1) -> p.Change:
    return p.Change(seq, kind, entity, version, msgspec.Raw(p.encode(data)), 1000 + seq)  # type: ignore[arg-type]


def message(cid: str, seq: int) -> p.Message:
    return p.Message(
        id=f"m{cid}{seq}",
        conversation_id=cid,
        seq=seq,
        author="bob",
        body="hi",
        created_at=2000 + seq,
    )


def test_changes_apply_once_and_move_the_cursor(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "c.db", apply_log=True)
    batch = [
        change(1, "conversation.upserted", "a", conv("a")),
        change(2, "message.created", "ma1", p.MessageCreated(message("a", 1), 0)),
        change(3, "message.created", "ma2", p.MessageCreated(message("a", 2), 0)),
    ]
    done = store.apply_changes(EPOCH, batch)
    assert [c.seq for c in done.changes] == [1, 2, 3]
    assert store.cursor() == (EPOCH, 3)
    again = store.apply_changes(
        EPOCH, [*batch, change(4, "conversation.read", "a", p.ConversationRead("a", 2, 0))]
    )
    assert [c.seq for c in again.changes] == [4]
    assert [s for s, _, _ in store.applied_log()] == [1, 2, 3, 4]
    a = store.conversation("a")
    assert a is not None and (a.message_count, a.read_seq, a.unread) == (2, 2, 0)
    assert [m.seq for m in store.messages("a")] == [1, 2]


def test_tombstone_removes_rows_and_snapshot_detects_deletes(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "c.db")
    store.apply_changes(
        EPOCH,
        [
            change(1, "conversation.upserted", "a", conv("a")),
            change(2, "conversation.upserted", "b", conv("b")),
            change(3, "conversation.deleted", "a", p.ConversationDeleted("a"), 2),
        ],
    )
    assert set(store.conversations()) == {"b"}
    snap = p.Snapshot(
        epoch=EPOCH + 1, head=10, conversations=[conv("c")], messages={"c": [message("c", 1)]}
    )
    done = store.apply_snapshot(snap)
    assert set(store.conversations()) == {"c"} and done.removed == {"b"}
    assert store.cursor() == (EPOCH + 1, 10)
    # a change of the new epoch at or below the snapshot head is already covered
    assert not store.apply_changes(
        EPOCH + 1, [change(10, "conversation.upserted", "x", conv("x"))]
    ).changes


def test_outbox_survives_reopen_and_settles_behind_the_cursor(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    store = LocalStore(path)
    store.apply_changes(EPOCH, [change(1, "conversation.upserted", "a", conv("a"))])
    first = store.enqueue("send", "a", {"id": "m1", "body": "hello"})
    second = store.enqueue("patch", "a", {"title": "x", "base_version": 1})
    store.close()
    store = LocalStore(path)  # as after a crash: whatever was committed is there
    assert [(e.id, e.op, e.state) for e in store.outbox()] == [
        (first.id, "send", "queued"),
        (second.id, "patch", "queued"),
    ]
    store.mark_acked(first.id, 2)
    assert store.settle() == []  # its change (seq 2) is not applied yet
    store.apply_changes(
        EPOCH, [change(2, "message.created", "m1", p.MessageCreated(message("a", 1), 1))]
    )
    assert store.settle() == [first.id]
    assert [e.id for e in store.outbox()] == [second.id]
