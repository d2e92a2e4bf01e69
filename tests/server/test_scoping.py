"""A user sees only the conversations they are a member of: streams, changes, snapshot, list
and messages. Membership changes show up as upserts and ``removed`` tombstones."""

from __future__ import annotations

import uuid

from tests.support.server_harness import Harness, assert_error


async def assert_invisible(h: Harness, user: str, cid: str, *, feed: bool = True) -> None:
    """Nothing ``user`` can read mentions ``cid`` (with ``feed``, not even their change feed,
    which otherwise keeps the history of a former membership); every per-conversation call is
    404."""
    reads = [
        await h.get(user, "/conversations"),
        await h.get(user, "/snapshot", params={"messages": "5"}),
    ]
    if feed:
        reads.append(await h.get(user, "/changes", params={"since": "0"}))
    for r in reads:
        assert r.status_code == 200
        assert cid not in r.text
    for method, path, body in [
        ("GET", f"/conversations/{cid}/messages", None),
        ("POST", f"/conversations/{cid}/messages", {"id": str(uuid.uuid4()), "body": "hi"}),
        ("POST", f"/conversations/{cid}/read", {"seq": 1}),
        ("PATCH", f"/conversations/{cid}", {"base_version": 1, "title": "mine now"}),
        ("PATCH", f"/conversations/{cid}", {"base_version": 1, "members": [user]}),
        ("DELETE", f"/conversations/{cid}?base_version=1", None),
    ]:
        r = await h.request(user, method, path, json=body)
        assert_error(r, 404, "not_found")


async def test_non_member_sees_nothing_until_added_and_is_told_when_removed(
    srv: Harness,
) -> None:
    bob_stream = await srv.stream("bob")
    carol_stream = await srv.stream("carol")
    conv = (await srv.create("alice", title="secret"))["conversation"]
    cid = conv["id"]
    await srv.send("alice", cid, "secret message")
    await srv.patch("alice", cid, base_version=1, title="still secret")
    await assert_invisible(srv, "bob", cid)

    # bob's feed got nothing from alice's writes: his next change is his own write.
    own = await srv.create("bob", title="bob's own")
    [e] = await bob_stream.changes(1)
    assert e.json()["entity_id"] == own["conversation"]["id"]
    assert e.json()["seq"] == 1
    assert cid.encode() not in bob_stream.raw

    # alice adds bob: he gets the conversation, with its history.
    r = await srv.patch("alice", cid, base_version=2, members=["bob"])
    assert r.status_code == 200, r.text
    assert r.json()["conversation"]["members"] == ["alice", "bob"]
    [added] = await bob_stream.changes(1)
    change = added.json()
    assert change["kind"] == "conversation.upserted" and change["entity_id"] == cid
    assert change["data"]["members"] == ["alice", "bob"]
    assert change["data"]["title"] == "still secret"
    assert change["data"]["unread"] == 1 and change["data"]["read_seq"] == 0
    page = (await srv.get("bob", f"/conversations/{cid}/messages")).json()
    assert [m["body"] for m in page["messages"]] == ["secret message"]
    assert cid in [c["id"] for c in (await srv.conversations("bob"))["conversations"]]
    snap = (await srv.get("bob", "/snapshot")).json()
    assert cid in [c["id"] for c in snap["conversations"]]

    # Now bob receives its messages live.
    msg = await srv.send("alice", cid, "welcome bob")
    [live] = await bob_stream.changes(1)
    assert live.json()["kind"] == "message.created"
    assert live.json()["data"]["message"]["id"] == msg["message"]["id"]

    # alice removes bob: he is told "removed", she gets an upsert without him.
    alice_stream = await srv.stream("alice")
    r = await srv.patch("alice", cid, base_version=3, members=[])
    assert r.status_code == 200, r.text
    [gone] = await bob_stream.changes(1)
    assert gone.json()["kind"] == "conversation.deleted"
    assert gone.json()["entity_id"] == cid
    assert gone.json()["data"] == {"id": cid, "reason": "removed"}
    [upsert] = await alice_stream.changes(1)
    assert upsert.json()["kind"] == "conversation.upserted"
    assert upsert.json()["data"]["members"] == ["alice"]
    await assert_invisible(srv, "bob", cid, feed=False)

    # carol was never involved: her stream carried nothing about it.
    await srv.create("carol")
    [c] = await carol_stream.changes(1)
    assert c.json()["seq"] == 1
    assert cid.encode() not in carol_stream.raw
    await assert_invisible(srv, "carol", cid)


async def test_members_given_at_creation_see_it_at_once(srv: Harness) -> None:
    bob_stream = await srv.stream("bob")
    conv = (await srv.create("alice", members=["bob"]))["conversation"]
    assert conv["members"] == ["alice", "bob"]
    [e] = await bob_stream.changes(1)
    assert e.json()["entity_id"] == conv["id"]
    await assert_invisible(srv, "carol", conv["id"])


async def test_unknown_member_is_rejected_and_creates_nothing(srv: Harness) -> None:
    cid = str(uuid.uuid4())
    r = await srv.post(
        "alice", "/conversations", json={"id": cid, "title": "t", "members": ["nobody"]}
    )
    assert_error(r, 409, "unknown_user")
    assert await srv.head("alice") == 0
    conv = (await srv.create("alice"))["conversation"]
    r = await srv.patch("alice", conv["id"], base_version=1, members=["bob", "nobody"])
    assert_error(r, 409, "unknown_user")
    assert await srv.head("bob") == 0


async def test_only_the_creator_changes_members(srv: Harness) -> None:
    conv = (await srv.create("alice", members=["bob"]))["conversation"]
    r = await srv.patch("bob", conv["id"], base_version=1, members=["bob", "carol"])
    assert_error(r, 403, "forbidden")
    await assert_invisible(srv, "carol", conv["id"])
    # ...but any member may rename or pin.
    r = await srv.patch("bob", conv["id"], base_version=1, title="renamed by bob", pinned=True)
    assert r.status_code == 200, r.text
    assert r.json()["conversation"]["title"] == "renamed by bob"
    assert r.json()["conversation"]["pinned"] is True
