"""Unread counts come from the server's numbers: message count and each member's read position."""

from __future__ import annotations

from tests.support.server_harness import Harness, assert_error


async def unread(h: Harness, user: str, cid: str) -> tuple[int, int]:
    """(unread, read_seq) of ``cid`` in ``user``'s list."""
    [conv] = [c for c in (await h.conversations(user))["conversations"] if c["id"] == cid]
    return conv["unread"], conv["read_seq"]


async def test_unread_counts(srv: Harness) -> None:
    cid = (await srv.create("alice", members=["bob"]))["conversation"]["id"]
    bob_stream = await srv.stream("bob")
    await srv.send("alice", cid, "one")
    assert await unread(srv, "bob", cid) == (1, 0)
    assert await unread(srv, "alice", cid) == (0, 1)  # own messages are not unread
    [e] = await bob_stream.changes(1)
    assert e.json()["kind"] == "message.created"
    assert e.json()["data"]["read_seq"] == 0  # bob's read position travels with the message

    await srv.send("alice", cid, "two")
    await srv.send("alice", cid, "three")
    assert await unread(srv, "bob", cid) == (3, 0)
    await bob_stream.changes(2)

    r = await srv.post("bob", f"/conversations/{cid}/read", json={"seq": 2})
    assert r.status_code == 200, r.text
    read = r.json()
    assert read == {"conversation_id": cid, "read_seq": 2, "unread": 1, "seq": read["seq"]}
    [e] = await bob_stream.changes(1)
    assert e.json()["kind"] == "conversation.read" and e.json()["seq"] == read["seq"]
    assert e.json()["data"] == {"conversation_id": cid, "read_seq": 2, "unread": 1}
    assert await unread(srv, "bob", cid) == (1, 2)

    # Never backwards, and no change is appended for a no-op.
    head = await srv.head("bob")
    r = await srv.post("bob", f"/conversations/{cid}/read", json={"seq": 1})
    assert r.status_code == 200
    assert r.json() == {"conversation_id": cid, "read_seq": 2, "unread": 1, "seq": head}
    assert await srv.head("bob") == head
    assert await unread(srv, "bob", cid) == (1, 2)

    # Past the end is clamped to the last message.
    r = await srv.post("bob", f"/conversations/{cid}/read", json={"seq": 10**6})
    assert r.json()["read_seq"] == 3 and r.json()["unread"] == 0
    assert await unread(srv, "bob", cid) == (0, 3)

    # bob's own message does not make anything unread for him, and one for alice.
    await srv.send("bob", cid, "reply")
    assert await unread(srv, "bob", cid) == (0, 4)
    assert await unread(srv, "alice", cid) == (1, 3)
    # Sending marks everything before it read too.
    await srv.send("alice", cid, "answer")
    assert await unread(srv, "alice", cid) == (0, 5)
    assert await unread(srv, "bob", cid) == (1, 4)

    # The snapshot and the message page agree.
    snap = (await srv.get("bob", "/snapshot")).json()
    [conv] = snap["conversations"]
    assert (conv["unread"], conv["read_seq"], conv["message_count"]) == (1, 4, 5)
    # Reading is scoped to members.
    r = await srv.post("carol", f"/conversations/{cid}/read", json={"seq": 5})
    assert_error(r, 404, "not_found")


async def test_upserts_carry_each_members_own_unread(srv: Harness) -> None:
    cid = (await srv.create("alice", members=["bob", "carol"]))["conversation"]["id"]
    for i in range(3):
        await srv.send("alice", cid, f"m{i}")
    await srv.post("carol", f"/conversations/{cid}/read", json={"seq": 2})
    streams = {u: await srv.stream(u) for u in ("alice", "bob", "carol")}
    r = await srv.patch("alice", cid, base_version=1, title="renamed")
    assert r.status_code == 200
    expected = {"alice": (0, 3), "bob": (3, 0), "carol": (1, 2)}
    for user, s in streams.items():
        [e] = await s.changes(1)
        data = e.json()["data"]
        assert (data["unread"], data["read_seq"]) == expected[user], user
        assert data["title"] == "renamed"
