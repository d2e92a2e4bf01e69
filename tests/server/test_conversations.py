"""Writes: optimistic concurrency (409 with ``current``), who may delete, idempotent creates
and sends (client-chosen ids), tombstones."""

from __future__ import annotations

import uuid

from tests.support.server_harness import Harness, assert_error


def assert_conflict(r, code: str = "version_conflict") -> dict:
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["error"]["code"] == code
    return body


async def test_stale_base_version_is_409_with_the_current_row(srv: Harness) -> None:
    conv = (await srv.create("alice", title="v1", members=["bob"]))["conversation"]
    cid = conv["id"]
    r = await srv.patch("bob", cid, base_version=1, title="v2 by bob")
    assert r.status_code == 200, r.text
    updated = r.json()
    assert updated["conversation"]["version"] == 2
    assert updated["seq"] == 2  # bob's feed: the create, then his rename

    head_before = await srv.head("alice")
    r = await srv.patch("alice", cid, base_version=1, title="v2 by alice")
    body = assert_conflict(r)
    current = body["error"]["current"]
    assert current["version"] == 2 and current["title"] == "v2 by bob"
    assert current["id"] == cid and current["members"] == ["alice", "bob"]
    assert current["read_seq"] == 0 and current["unread"] == 0
    # A rejected write changes nothing and appends nothing.
    assert await srv.head("alice") == head_before
    listing = await srv.conversations("alice")
    assert listing["conversations"][0]["title"] == "v2 by bob"

    r = await srv.request("alice", "DELETE", f"/conversations/{cid}?base_version=1")
    assert assert_conflict(r)["error"]["current"]["version"] == 2
    r = await srv.patch("alice", cid, base_version=3, pinned=True)  # from the future: also stale
    assert_conflict(r)
    r = await srv.patch("alice", cid, base_version=2, pinned=True)
    assert r.status_code == 200
    assert r.json()["conversation"] | {"updated_at": 0} == current | {
        "version": 3,
        "pinned": True,
        "updated_at": 0,
    }


async def test_only_the_creator_deletes(srv: Harness) -> None:
    conv = (await srv.create("alice", members=["bob"]))["conversation"]
    cid = conv["id"]
    r = await srv.request("bob", "DELETE", f"/conversations/{cid}?base_version=1")
    assert_error(r, 403, "forbidden")
    r = await srv.request("carol", "DELETE", f"/conversations/{cid}?base_version=1")
    assert_error(r, 404, "not_found")  # a non-member does not learn it exists
    assert len((await srv.conversations("bob"))["conversations"]) == 1
    r = await srv.request("alice", "DELETE", f"/conversations/{cid}?base_version=1")
    assert r.status_code == 200, r.text
    assert r.json() == {"id": cid, "seq": 2}


async def test_delete_accepts_base_version_in_a_json_body(srv: Harness) -> None:
    conv = (await srv.create("alice"))["conversation"]
    r = await srv.request(
        "alice", "DELETE", f"/conversations/{conv['id']}", json={"base_version": 1}
    )
    assert r.status_code == 200, r.text
    assert (await srv.conversations("alice"))["conversations"] == []


async def test_create_is_idempotent(srv: Harness) -> None:
    cid = str(uuid.uuid4())
    body = {"id": cid, "title": "same", "members": ["bob", "carol"]}
    first = await srv.post("alice", "/conversations", json=body)
    assert first.status_code == 201
    heads = [await srv.head(u) for u in ("alice", "bob", "carol")]
    assert heads == [1, 1, 1]

    # The same create again (members in another order, the id in upper case): same answer.
    retry = {"id": cid.upper(), "title": "same", "members": ["carol", "bob", "bob"]}
    for again in (body, retry):
        r = await srv.post("alice", "/conversations", json=again)
        assert r.status_code == 201, r.text
        assert r.json() == first.json()
    assert [await srv.head(u) for u in ("alice", "bob", "carol")] == heads

    # The same id with other content, or from someone else, is a conflict.
    for user, other in [
        ("alice", {**body, "title": "different"}),
        ("alice", {**body, "members": ["bob"]}),
        ("bob", {**body, "members": ["alice", "carol"]}),
        ("carol", body),
    ]:
        assert_conflict(await srv.post(user, "/conversations", json=other), "id_conflict")
    assert [await srv.head(u) for u in ("alice", "bob", "carol")] == heads


async def test_send_is_idempotent(srv: Harness) -> None:
    conv = (await srv.create("alice", members=["bob"]))["conversation"]
    cid = conv["id"]
    mid = str(uuid.uuid4())
    first = await srv.send("alice", cid, "once", mid=mid)
    assert first["message"]["seq"] == 1
    heads = [await srv.head("alice"), await srv.head("bob")]

    again = await srv.send("alice", cid, "once", mid=mid.upper())
    assert again == first
    assert [await srv.head("alice"), await srv.head("bob")] == heads
    page = (await srv.get("bob", f"/conversations/{cid}/messages")).json()
    assert page["total_count"] == 1 and len(page["messages"]) == 1

    other = (await srv.create("alice"))["conversation"]
    heads = [await srv.head("alice"), await srv.head("bob")]
    for user, target, text in [
        ("alice", cid, "twice"),  # other body
        ("bob", cid, "once"),  # other author
        ("alice", other["id"], "once"),  # other conversation
    ]:
        r = await srv.post(
            user, f"/conversations/{target}/messages", json={"id": mid, "body": text}
        )
        assert_conflict(r, "id_conflict")
    assert [await srv.head("alice"), await srv.head("bob")] == heads


async def test_delete_leaves_a_tombstone_in_every_members_feed(srv: Harness) -> None:
    conv = (await srv.create("alice", members=["bob", "carol"]))["conversation"]
    cid = conv["id"]
    await srv.send("bob", cid, "hi all")
    streams = {u: await srv.stream(u) for u in ("alice", "bob", "carol")}
    r = await srv.request("alice", "DELETE", f"/conversations/{cid}?base_version=1")
    assert r.status_code == 200, r.text
    for user, s in streams.items():
        [e] = await s.changes(1)
        change = e.json()
        assert change["kind"] == "conversation.deleted", user
        assert change["entity_id"] == cid and change["version"] == 2
        assert change["data"] == {"id": cid, "reason": "deleted"}
        assert change["seq"] == s.hello["head"] + 1
        snap = (await srv.get(user, "/snapshot", params={"messages": "10"})).json()
        assert snap["conversations"] == [] and snap["messages"] == {}
        assert (await srv.conversations(user))["conversations"] == []
        assert_error(await srv.get(user, f"/conversations/{cid}/messages"), 404, "not_found")
        tail = (await srv.get(user, "/changes", params={"since": "0"})).json()["changes"]
        assert tail[-1]["kind"] == "conversation.deleted"

    # Its id stays taken: recreating is refused, and so is writing to it.
    body = {"id": cid, "title": "a conversation", "members": ["bob", "carol"]}
    assert_conflict(await srv.post("alice", "/conversations", json=body), "conversation_deleted")
    r = await srv.post(
        "alice", f"/conversations/{cid}/messages", json={"id": str(uuid.uuid4()), "body": "x"}
    )
    assert_error(r, 404, "not_found")
    r = await srv.request("alice", "DELETE", f"/conversations/{cid}?base_version=2")
    assert_error(r, 404, "not_found")
