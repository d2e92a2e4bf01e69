"""Editing and deleting messages on the server (docs/architecture.md §4): only the author, with
versions and idempotency keys, tombstones in every member's feed, erased text, and numbering that
stays sound (seqs never reused, counts and unread counts of the messages that exist)."""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

import httpx

from tests.support.server_harness import Harness, assert_error


def key(n: int) -> dict[str, str]:
    return {"Idempotency-Key": f"00000000-0000-4000-9000-{n:012d}"}


def path(cid: str, mid: str) -> str:
    return f"/conversations/{cid}/messages/{mid}"


async def edit(
    srv: Harness, user: str, cid: str, mid: str, body: str, base: int, **kw: Any
) -> httpx.Response:
    return await srv.request(
        user, "PATCH", path(cid, mid), json={"body": body, "base_version": base}, **kw
    )


async def delete(srv: Harness, user: str, cid: str, mid: str, **kw: Any) -> httpx.Response:
    return await srv.request(user, "DELETE", path(cid, mid), **kw)


async def changes(srv: Harness, user: str) -> list[dict[str, Any]]:
    r = await srv.get(user, "/changes?since=0")
    assert r.status_code == 200, r.text
    out: list[dict[str, Any]] = r.json()["changes"]
    return out


async def conversation(srv: Harness, user: str, cid: str) -> dict[str, Any]:
    [conv] = [c for c in (await srv.conversations(user))["conversations"] if c["id"] == cid]
    return conv


async def page(srv: Harness, user: str, cid: str) -> dict[str, Any]:
    r = await srv.get(user, f"/conversations/{cid}/messages")
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


async def test_the_author_edits_and_every_member_gets_the_new_text(srv: Harness) -> None:
    cid = (await srv.create("alice", members=["bob"]))["conversation"]["id"]
    sent = (await srv.send("alice", cid, "helo"))["message"]
    assert sent["version"] == 1 and sent["edited_at"] is None and sent["deleted"] is False
    r = await edit(srv, "alice", cid, sent["id"], "hello", 1)
    assert r.status_code == 200, r.text
    msg = r.json()["message"]
    assert (msg["body"], msg["version"], msg["seq"]) == ("hello", 2, sent["seq"])
    assert msg["edited_at"] >= sent["created_at"]
    for user in ("alice", "bob"):
        [change] = [c for c in await changes(srv, user) if c["kind"] == "message.updated"]
        assert change["entity_id"] == sent["id"] and change["version"] == 2
        assert change["data"]["message"]["body"] == "hello"
        assert [m["body"] for m in (await page(srv, user, cid))["messages"]] == ["hello"]
    # An edit is not a new message: nobody's unread count or the list order moves.
    assert (await conversation(srv, "bob", cid))["unread"] == 1


async def test_only_the_author_may_edit_or_delete_and_others_do_not_see_it(srv: Harness) -> None:
    cid = (await srv.create("alice", members=["bob"]))["conversation"]["id"]
    mid = (await srv.send("alice", cid, "mine"))["message"]["id"]
    assert_error(await edit(srv, "bob", cid, mid, "bob's now", 1), 403, "forbidden")
    assert_error(await delete(srv, "bob", cid, mid), 403, "forbidden")
    # Carol is no member: the conversation and its messages do not exist for her.
    assert_error(await edit(srv, "carol", cid, mid, "x", 1), 404, "not_found")
    assert_error(await delete(srv, "carol", cid, mid), 404, "not_found")
    assert_error(await edit(srv, "alice", cid, str(uuid.uuid4()), "x", 1), 404, "not_found")
    assert_error(await delete(srv, "alice", cid, "not-a-uuid"), 404, "not_found")
    other = (await srv.create("alice"))["conversation"]["id"]  # the right id, wrong conversation
    assert_error(await edit(srv, "alice", other, mid, "x", 1), 404, "not_found")
    assert [m["body"] for m in (await page(srv, "alice", cid))["messages"]] == ["mine"]


async def test_a_stale_base_version_is_a_conflict_with_the_current_message(srv: Harness) -> None:
    cid = (await srv.create("alice"))["conversation"]["id"]
    mid = (await srv.send("alice", cid, "one"))["message"]["id"]
    assert (await edit(srv, "alice", cid, mid, "two", 1)).status_code == 200
    r = await edit(srv, "alice", cid, mid, "three", 1)  # another device still saw version 1
    assert r.status_code == 409
    err = r.json()["error"]
    assert err["code"] == "version_conflict"
    assert (err["current_message"]["body"], err["current_message"]["version"]) == ("two", 2)
    # A delete with a stale base_version is refused the same way; without one it goes.
    r = await delete(srv, "alice", cid, mid, params={"base_version": 1})
    assert r.status_code == 409 and r.json()["error"]["current_message"]["version"] == 2
    assert (await delete(srv, "alice", cid, mid, json={"base_version": 2})).status_code == 200


async def test_retries_with_the_same_operation_id_get_the_first_answer(srv: Harness) -> None:
    cid = (await srv.create("alice", members=["bob"]))["conversation"]["id"]
    mid = (await srv.send("alice", cid, "draft"))["message"]["id"]
    first = await edit(srv, "alice", cid, mid, "final", 1, headers=key(1))
    assert first.status_code == 200, first.text
    head = await srv.head("bob")
    again = await edit(srv, "alice", cid, mid, "final", 1, headers=key(1))
    assert (again.status_code, again.json()) == (200, first.json())
    assert await srv.head("bob") == head  # applied and published once
    # The same key for another request is refused; a key is per operation.
    assert_error(
        await delete(srv, "alice", cid, mid, headers=key(1)), 422, "idempotency_key_reused"
    )
    gone = await delete(srv, "alice", cid, mid, headers=key(2))
    assert gone.status_code == 200, gone.text
    assert (await delete(srv, "alice", cid, mid, headers=key(2))).json() == gone.json()
    # Another device's delete of a deleted message: not there any more.
    assert_error(await delete(srv, "alice", cid, mid, headers=key(3)), 404, "not_found")
    assert_error(await edit(srv, "alice", cid, mid, "late", 3), 404, "not_found")
    assert_error(
        await srv.request("alice", "DELETE", path(cid, mid), headers={"Idempotency-Key": "a b"}),
        400,
        "invalid_idempotency_key",
    )


async def test_a_delete_erases_the_text_and_leaves_a_tombstone_in_every_feed(
    srv: Harness,
) -> None:
    cid = (await srv.create("alice", members=["bob", "carol"]))["conversation"]["id"]
    mid = (await srv.send("alice", cid, "a secret typed by mistake"))["message"]["id"]
    await srv.send("bob", cid, "what?")
    r = await delete(srv, "alice", cid, mid)
    assert r.status_code == 200 and r.json()["id"] == mid
    for user in ("alice", "bob", "carol"):
        [tomb] = [c for c in await changes(srv, user) if c["kind"] == "message.deleted"]
        assert tomb["entity_id"] == mid and tomb["data"]["id"] == mid
        assert tomb["data"]["conversation_id"] == cid and tomb["data"]["seq"] == 1
        assert [m["body"] for m in (await page(srv, user, cid))["messages"]] == ["what?"]
    # Erased in the database itself, not just hidden; the row stays so the id is never reused.
    db_path = srv.settings.database_path
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT body, deleted FROM messages WHERE id=?", (mid,)).fetchall() == [
            ("", 1)
        ]
    snap = (await srv.get("bob", "/snapshot?messages=50")).json()
    assert [m["body"] for m in snap["messages"][cid]] == ["what?"]
    # A retried send of the deleted message does not bring it back.
    again = await srv.post(
        "alice",
        f"/conversations/{cid}/messages",
        json={"id": mid, "body": "a secret typed by mistake"},
    )
    assert again.status_code == 201 and again.json()["message"]["deleted"] is True
    assert [m["body"] for m in (await page(srv, "bob", cid))["messages"]] == ["what?"]


async def test_seqs_are_never_reused_and_counts_are_of_messages_that_exist(srv: Harness) -> None:
    cid = (await srv.create("alice", members=["bob"]))["conversation"]["id"]
    sent = [(await srv.send("alice", cid, f"m{i}"))["message"] for i in range(3)]
    assert [m["seq"] for m in sent] == [1, 2, 3]
    bob = await conversation(srv, "bob", cid)
    assert (bob["message_count"], bob["last_seq"], bob["unread"]) == (3, 3, 3)
    assert (await delete(srv, "alice", cid, sent[2]["id"])).status_code == 200
    bob = await conversation(srv, "bob", cid)
    assert (bob["message_count"], bob["last_seq"], bob["unread"]) == (2, 3, 2)
    nxt = (await srv.send("alice", cid, "m3"))["message"]
    assert nxt["seq"] == 4  # the deleted message's seq 3 is not given again
    listing = await page(srv, "bob", cid)
    assert listing["total_count"] == 3 and [m["seq"] for m in listing["messages"]] == [1, 2, 4]
    # A page before a deleted first message says there is nothing more.
    assert (await delete(srv, "alice", cid, sent[0]["id"])).status_code == 200
    older = (await srv.get("bob", f"/conversations/{cid}/messages?before=4")).json()
    assert [m["seq"] for m in older["messages"]] == [2] and older["has_more"] is False
    assert older["total_count"] == 2


async def test_unread_counts_only_other_peoples_existing_messages(srv: Harness) -> None:
    cid = (await srv.create("alice", members=["bob"]))["conversation"]["id"]
    a1 = (await srv.send("alice", cid, "a1"))["message"]
    a2 = (await srv.send("alice", cid, "a2"))["message"]
    r = await srv.post("bob", f"/conversations/{cid}/read", json={"seq": a1["seq"]})
    assert r.json()["unread"] == 1
    # Deleting a message bob has read changes nothing for him; one he has not read, does.
    await delete(srv, "alice", cid, a1["id"])
    assert (await conversation(srv, "bob", cid))["unread"] == 1
    await delete(srv, "alice", cid, a2["id"])
    bob = await conversation(srv, "bob", cid)
    assert (bob["unread"], bob["read_seq"]) == (0, 1)  # the read position stays valid
    b1 = (await srv.send("bob", cid, "b1"))["message"]
    a3 = (await srv.send("alice", cid, "a3"))["message"]
    bob = await conversation(srv, "bob", cid)
    assert (bob["unread"], bob["read_seq"]) == (1, b1["seq"])
    assert (await conversation(srv, "alice", cid))["unread"] == 0  # her own are never unread
    # Reading up to the end: the read position is the last seq, not the count of messages.
    r = await srv.post("bob", f"/conversations/{cid}/read", json={"seq": 10**6})
    assert (r.json()["read_seq"], r.json()["unread"]) == (a3["seq"], 0)
    # The change feed carries the receiving member's counts.
    created = [c for c in await changes(srv, "bob") if c["kind"] == "message.created"]
    assert created[-1]["data"]["unread"] == 1 and created[-1]["data"]["message_count"] == 2
    tomb = [c for c in await changes(srv, "bob") if c["kind"] == "message.deleted"][-1]
    assert (tomb["data"]["unread"], tomb["data"]["message_count"]) == (0, 0)


async def test_bad_input_is_a_4xx_with_a_json_error(srv: Harness) -> None:
    cid = (await srv.create("alice"))["conversation"]["id"]
    mid = (await srv.send("alice", cid, "text"))["message"]["id"]
    url = path(cid, mid)
    bad: list[tuple[Any, int, str]] = [
        ({"body": "", "base_version": 1}, 422, "invalid_request"),
        ({"body": "   \n", "base_version": 1}, 422, "invalid_request"),
        ({"body": "x" * (64 * 1024 + 1), "base_version": 1}, 422, "invalid_request"),
        ({"body": "é" * 40_000, "base_version": 1}, 422, "invalid_request"),  # over 64 KiB
        ({"body": 5, "base_version": 1}, 422, "invalid_request"),
        ({"body": "x", "base_version": "1"}, 422, "invalid_request"),
        ({"body": "x", "base_version": 0}, 422, "invalid_request"),
        ({"body": "x"}, 422, "invalid_request"),
        ({"body": "x", "base_version": 1, "pinned": True}, 422, "invalid_request"),
        ([], 422, "invalid_request"),
    ]
    for body, status, code in bad:
        assert_error(await srv.request("alice", "PATCH", url, json=body), status, code)
    assert_error(
        await srv.request("alice", "PATCH", url, content=b"{nope", headers={"content-type": "x"}),
        400,
        "invalid_json",
    )
    assert_error(await srv.request("alice", "PATCH", url), 400, "invalid_json")
    assert_error(
        await srv.request("alice", "DELETE", url, json={"base_version": "x"}),
        422,
        "invalid_request",
    )
    assert_error(
        await srv.request("alice", "DELETE", url, params={"base_version": "-1"}),
        400,
        "invalid_parameter",
    )
    assert_error(await srv.request(None, "PATCH", url, json={"body": "x"}), 401, "unauthorized")
    assert [m["body"] for m in (await page(srv, "alice", cid))["messages"]] == ["text"]


async def test_the_openapi_description_has_both_endpoints(srv: Harness) -> None:
    doc = (await srv.get(None, "/openapi.json")).json()
    ops = doc["paths"]["/api/v1/conversations/{conversation_id}/messages/{message_id}"]
    assert set(ops) == {"patch", "delete"}
    names = {p["name"] for p in ops["patch"]["parameters"]}
    assert {"conversation_id", "message_id", "Idempotency-Key"} <= names
    schemas = doc["components"]["schemas"]
    assert {"MessagePatch", "MessageUpdated", "MessageDeleted"} <= set(schemas)
    assert {"version", "edited_at", "deleted"} <= set(schemas["Message"]["properties"])
    assert "message.deleted" in schemas["Change"]["properties"]["kind"]["description"]


async def test_a_snapshot_names_older_deleted_and_edited_messages(srv: Harness) -> None:
    cid = (await srv.create("alice", members=["bob"]))["conversation"]["id"]
    sent = [(await srv.send("alice", cid, f"m{i}"))["message"] for i in range(4)]
    assert (await edit(srv, "alice", cid, sent[0]["id"], "m0 fixed", 1)).status_code == 200
    assert (await delete(srv, "alice", cid, sent[1]["id"])).status_code == 200
    assert (await edit(srv, "alice", cid, sent[3]["id"], "m3 fixed", 1)).status_code == 200
    snap = (await srv.get("bob", "/snapshot?messages=1")).json()
    assert [m["body"] for m in snap["messages"][cid]] == ["m3 fixed"]
    # Older than that page: what a cache holding older pages must erase or update.
    assert snap["deleted"] == {cid: [2]}
    assert [(m["seq"], m["body"], m["version"]) for m in snap["edited"][cid]] == [
        (1, "m0 fixed", 2)
    ]
    none = (await srv.get("bob", "/snapshot?messages=0")).json()
    assert none["messages"] == {} and none["deleted"] == {cid: [2]}
    assert [m["seq"] for m in none["edited"][cid]] == [1, 4]
