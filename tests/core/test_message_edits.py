"""Editing and deleting messages through the client (docs/architecture.md §5.8): optimistic
and pending at once, through the outbox, rolled back when refused, a device's later edit never
losing to its earlier one, unread counts right, and every device converging on the server."""

from __future__ import annotations

import asyncio
import concurrent.futures
import random
from typing import Any

import pytest

from core import protocol as p
from core.model import ErrorInfo, MessageView
from core.store import LocalStore
from core.sync_messages import RowsApplied
from core.sync_messages import decode as decode_sync
from core.sync_messages import encode as encode_sync
from server.auth import now_ms
from server.storage import SQLiteStorage
from tests.support.convergence import assert_converged
from tests.support.waiting import wait_until

ALICE = 1  # add_users makes alice, bob and carol in that order


def edit_behind_our_back(server: Any, cid: str, mid: str, base: int, body: str) -> None:
    """Another device of alice's edits the message, straight in the server's database."""

    async def run() -> None:
        store = SQLiteStorage(server.data_dir / "concord.db")
        await store.open()
        await store.edit_message(ALICE, cid, mid, p.MessagePatch(base, body), now_ms())
        await store.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


def bodies(client: Any, cid: str) -> list[str]:
    return [m.body for m in client.messages(cid)]


async def test_edit_and_delete_show_at_once_and_every_device_converges(
    live_server, clients
) -> None:
    a = await clients(live_server.url, "alice", "d1")
    a2 = await clients(live_server.url, "alice", "d2")
    b = await clients(live_server.url, "bob", "d1")
    seen: list[tuple[str, list[MessageView]]] = []
    a.events.messages_added.connect(lambda cid, ms: seen.append((cid, ms)))
    conv = await a.create_conversation("plans", ["bob"])
    one = await a.send_message(conv.id, "helo")
    two = await a.send_message(conv.id, "second zebra")
    await a.wait_synced(10)
    await wait_until(lambda: bodies(b, conv.id) == ["helo", "second zebra"], "bob to get both")

    seen.clear()
    edited = await a.edit_message(conv.id, one.id, "hello")
    # At once, before any network traffic: the new text, marked as not yet confirmed.
    assert (edited.body, edited.edited, edited.edit_pending) == ("hello", True, True)
    assert bodies(a, conv.id) == ["hello", "second zebra"]
    assert any(m.id == one.id and m.body == "hello" for _, ms in seen for m in ms)
    await a.delete_message(conv.id, two.id)
    assert bodies(a, conv.id) == ["hello"] and a.message(conv.id, two.id) is None
    assert any(m.id == two.id and m.deleted for _, ms in seen for m in ms)

    await a.wait_synced(10)
    for c in (a, a2, b):
        await wait_until(lambda c=c: bodies(c, conv.id) == ["hello"], f"{c.me} to converge")
    for c in (a, a2, b):
        m = c.message(conv.id, one.id)
        assert (m.body, m.version, m.edited, m.edit_pending) == ("hello", 2, True, False)
        assert c.message(conv.id, two.id) is None
    assert b.conversation(conv.id).message_count == 1
    await assert_converged(live_server, [a, a2, b])
    # The deleted text is erased from every cache and its search index, not only hidden; the
    # edit is what search finds, locally and on the server.
    for c in (a, a2, b):
        rows = c.store.db.execute("SELECT body FROM messages WHERE id=?", (two.id,)).fetchall()
        assert rows == []
        assert not c.search("zebra").messages
        assert [h.message.id for h in c.search("hello").messages] == [one.id]
        assert not c.search("helo").messages
    assert not (await b.search_server("zebra")).messages
    assert [h.message.body for h in (await b.search_server("hello")).messages] == ["hello"]


async def test_a_refused_edit_is_rolled_back_and_its_text_kept(live_server, clients) -> None:
    a = await clients(live_server.url, "alice", "d1")
    errors: list[ErrorInfo] = []
    a.events.error.connect(lambda e: errors.append(e) if e.kind == "rejected" else None)
    conv = await a.create_conversation("notes")
    msg = await a.send_message(conv.id, "original")
    await a.wait_synced(10)
    live_server.stop()
    await wait_until(lambda: a.status.state != "live", "the client to notice")
    edit_behind_our_back(live_server, conv.id, msg.id, 1, "from my phone")
    await a.edit_message(conv.id, msg.id, "from my laptop")
    assert a.message(conv.id, msg.id).body == "from my laptop"
    live_server.restart()

    await wait_until(lambda: errors, "the refusal", timeout=15)
    assert errors[0].kind == "rejected" and errors[0].conversation_id == conv.id
    await a.wait_synced(10)
    await wait_until(
        lambda: a.message(conv.id, msg.id).body == "from my phone", "the server's text to show"
    )
    m = a.message(conv.id, msg.id)
    assert (m.version, m.edit_pending) == (2, False)
    assert a.draft(conv.id) == "from my laptop"  # nothing the user typed is lost
    assert not a.outbox()


async def test_a_later_edit_follows_the_send_and_the_earlier_edit(live_server, clients) -> None:
    a = await clients(live_server.url, "alice", "d1")
    a2 = await clients(live_server.url, "alice", "d2")
    errors: list[ErrorInfo] = []
    a.events.error.connect(lambda e: errors.append(e) if e.kind == "rejected" else None)
    conv = await a.create_conversation("chain")
    await a.wait_synced(10)
    live_server.stop()
    await wait_until(lambda: a.status.state != "live", "the client to notice")
    sent = await a.send_message(conv.id, "v1")
    assert sent.seq is None  # still being sent
    await a.edit_message(conv.id, sent.id, "v2")
    await a.edit_message(conv.id, sent.id, "v3")  # written against the same base as v2
    assert bodies(a, conv.id) == ["v3"]
    assert [e.op for e in a.outbox()] == ["send", "edit_message", "edit_message"]
    live_server.restart()

    await a.wait_synced(15)
    snap = await live_server.snapshot("alice")
    [server_msg] = snap["messages"][conv.id]
    assert (server_msg["body"], server_msg["version"]) == ("v3", 3)
    await wait_until(lambda: bodies(a2, conv.id) == ["v3"], "the other device to converge")
    assert not errors
    # Deleting a message being edited: it is gone, and the delete wins over the edit.
    await a.edit_message(conv.id, sent.id, "v4")
    await a.delete_message(conv.id, sent.id)
    assert bodies(a, conv.id) == []
    await a.wait_synced(10)
    await assert_converged(live_server, [a, a2])
    assert (await live_server.snapshot("alice"))["messages"].get(conv.id, []) == []
    assert not errors


async def test_unread_counts_follow_deletes(live_server, clients) -> None:
    a = await clients(live_server.url, "alice", "d1")
    b = await clients(live_server.url, "bob", "d1")
    conv = await a.create_conversation("counts", ["bob"])
    sent = [await a.send_message(conv.id, f"m{i}") for i in range(3)]
    await a.wait_synced(10)
    await wait_until(lambda: b.unread(conv.id) == 3, "bob's three unread")
    await a.delete_message(conv.id, sent[2].id)
    await a.wait_synced(10)
    await wait_until(lambda: b.unread(conv.id) == 2, "bob's unread to drop with the delete")
    assert b.total_unread() == 2 and a.unread(conv.id) == 0
    await b.mark_read(conv.id)
    await b.wait_synced(10)
    assert b.unread(conv.id) == 0
    # Read up to the last seq given (3, deleted): deleting a read message changes nothing, and a
    # new message is one unread.
    await a.delete_message(conv.id, sent[0].id)
    await a.send_message(conv.id, "m3")
    await a.wait_synced(10)
    await wait_until(lambda: b.unread(conv.id) == 1, "one new unread for bob")
    view = b.conversation(conv.id)
    assert (view.message_count, view.last_seq) == (2, 4)
    await b.mark_read(conv.id)
    await b.wait_synced(10)
    assert b.unread(conv.id) == 0
    await assert_converged(live_server, [a, b])


async def test_bad_edits_are_refused_at_once_and_queue_nothing(live_server, clients) -> None:
    a = await clients(live_server.url, "alice", "d1")
    b = await clients(live_server.url, "bob", "d1")
    conv = await a.create_conversation("rules", ["bob"])
    msg = await a.send_message(conv.id, "mine")
    await a.wait_synced(10)
    await wait_until(lambda: b.message(conv.id, msg.id) is not None, "bob to get it")
    with pytest.raises(ValueError, match="blank"):
        await a.edit_message(conv.id, msg.id, "  \n")
    with pytest.raises(ValueError, match="64 KiB"):
        await a.edit_message(conv.id, msg.id, "x" * (p.MAX_BODY_BYTES + 1))
    with pytest.raises(KeyError):
        await a.edit_message(conv.id, "00000000-0000-4000-8000-000000000000", "x")
    with pytest.raises(ValueError, match="author"):
        await b.edit_message(conv.id, msg.id, "bob's words")
    with pytest.raises(ValueError, match="author"):
        await b.delete_message(conv.id, msg.id)
    unchanged = await a.edit_message(conv.id, msg.id, "mine")  # the same text: nothing to do
    assert unchanged.version == 1 and not unchanged.edit_pending
    assert not a.outbox() and not b.outbox()
    assert bodies(b, conv.id) == ["mine"]


def test_a_full_sync_erases_deleted_messages_and_takes_edits(tmp_path) -> None:
    store = LocalStore(tmp_path / "cache.db")

    def conv(count: int, last: int) -> p.Conversation:
        return p.Conversation("c1", "t", False, 1, "alice", ["alice"], 1, 1, count, last, 0, last)

    def msg(seq: int, body: str, version: int = 1) -> p.Message:
        return p.Message(f"m{seq}", "c1", seq, "alice", body, seq, version)

    try:
        first = {"c1": [msg(i, f"b{i}") for i in (1, 2, 3, 4, 5)]}
        store.apply_snapshot(p.Snapshot(1, 5, [conv(5, 5)], first))
        # Later: 1 was deleted and 2 edited (older than the page), 4 deleted and 3 edited (in it).
        snap = p.Snapshot(
            1,
            9,
            [conv(3, 5)],
            {"c1": [msg(3, "b3 fixed", 2), msg(5, "b5")]},
            {"c1": [1]},
            {"c1": [msg(2, "b2 fixed", 3)]},
        )
        done = store.apply_snapshot(snap)
        assert [(m.seq, m.body) for m in store.messages("c1")] == [
            (2, "b2 fixed"),
            (3, "b3 fixed"),
            (5, "b5"),
        ]
        assert done.deleted == {"c1": ["m1", "m4"]}
        assert {m.id for m in done.messages["c1"]} == {"m2", "m3"}  # edited: shown again
        # The same snapshot again changes nothing.
        again = store.apply_snapshot(snap)
        assert not again.deleted and not again.messages
    finally:
        store.close()


@pytest.mark.parametrize("seed", [11, 12, 13])
async def test_random_sends_edits_and_deletes_converge(live_server, clients, seed: int) -> None:
    """Two devices of alice's and bob's, each sending, editing and deleting their own messages
    and reading, some while the server is down: everyone ends where the server is."""
    rng = random.Random(seed)
    a = await clients(live_server.url, "alice", "d1")
    a2 = await clients(live_server.url, "alice", "d2")
    b = await clients(live_server.url, "bob", "d1")
    conv = await a.create_conversation("busy", ["bob"])
    await a.wait_synced(10)
    for c in (a2, b):
        await wait_until(lambda c=c: c.conversation(conv.id) is not None, f"{c.me} to see it")
    actors = [a, a2, b]
    for i in range(80):
        if i == 30:
            live_server.stop()
        if i == 50:
            live_server.restart()
        actor = rng.choice(actors)
        own = [m for m in actor.messages(conv.id) if m.author == actor.me]
        roll = rng.random()
        if not own or roll < 0.4:
            await actor.send_message(conv.id, f"message {i} from {actor.me}")
        elif roll < 0.7:
            await actor.edit_message(conv.id, rng.choice(own).id, f"edit {i} by {actor.me}")
        elif roll < 0.85:
            await actor.delete_message(conv.id, rng.choice(own).id)
        else:
            await actor.mark_read(conv.id)
        if live_server.running and i % 9 == 0:
            await actor.wait_synced(20)
    for c in actors:
        await c.wait_synced(30)
    await assert_converged(live_server, actors)
    snap = await live_server.snapshot("alice")
    for c in actors:  # the texts too, edits included
        want = [m["body"] for m in snap["messages"].get(conv.id, [])]
        await wait_until(lambda c=c, want=want: bodies(c, conv.id) == want, "the same texts")


def test_the_bus_message_of_applied_rows_carries_deleted_messages() -> None:
    sent = RowsApplied(upserted=["c1"], removed=[], messages={"c1": [4]}, deleted={"c1": ["m3"]})
    got = decode_sync(encode_sync(sent))
    assert isinstance(got, RowsApplied) and got.deleted == {"c1": ["m3"]}
    # Without deletes the message is what an older version of the app sends and reads.
    plain = encode_sync(RowsApplied(upserted=[], removed=[], messages={}))
    assert "deleted" not in plain


async def test_every_window_of_a_device_follows_edits_and_deletes(live_server, clients) -> None:
    """A second process of the device (a follower on its sync bus) edits through the leader,
    and sees another device's delete as a removal."""
    lead = await clients(live_server.url, "alice", "d1")
    follower = await clients(live_server.url, "alice", "d1")
    phone = await clients(live_server.url, "alice", "d2")
    assert lead.leadership.leading and not follower.leadership.leading
    conv = await lead.create_conversation("windows")
    one = await lead.send_message(conv.id, "one")
    two = await lead.send_message(conv.id, "two")
    await lead.wait_synced(10)
    await wait_until(lambda: bodies(follower, conv.id) == ["one", "two"], "the follower")
    await wait_until(lambda: bodies(phone, conv.id) == ["one", "two"], "the phone")
    removed: list[str] = []
    follower.events.messages_added.connect(
        lambda cid, ms: removed.extend(m.id for m in ms if m.deleted)
    )
    await follower.edit_message(conv.id, one.id, "one, edited in another window")
    await phone.delete_message(conv.id, two.id)
    await phone.wait_synced(10)
    await wait_until(lambda: two.id in removed, "the follower to be told it is gone")
    want = ["one, edited in another window"]
    for c in (lead, follower, phone):
        await wait_until(lambda c=c: bodies(c, conv.id) == want, "every window and device")
    await wait_until(lambda: not follower.message(conv.id, one.id).edit_pending, "confirmed")
