"""Snapshot (head before data, unread, recent messages), message pages and the changes page."""

from __future__ import annotations

import asyncio

from tests.support.server_harness import Harness


async def test_snapshot_contents(srv: Harness) -> None:
    a = (await srv.create("alice", title="A", members=["bob"]))["conversation"]["id"]
    b = (await srv.create("alice", title="B"))["conversation"]["id"]
    c = (await srv.create("bob", title="C", members=["alice"]))["conversation"]["id"]
    for i in range(5):
        await srv.send("alice", a, f"a{i + 1}")
    for i in range(2):
        await srv.send("bob", c, f"c{i + 1}")
    await srv.post("bob", f"/conversations/{a}/read", json={"seq": 2})

    snap = (await srv.get("bob", "/snapshot", params={"messages": "3"})).json()
    assert set(snap) == {"epoch", "head", "conversations", "messages", "deleted", "edited"}
    assert snap["epoch"] == srv.epoch
    assert snap["head"] == await srv.head("bob")
    convs = {conv["id"]: conv for conv in snap["conversations"]}
    assert set(convs) == {a, c}
    assert (convs[a]["unread"], convs[a]["read_seq"], convs[a]["message_count"]) == (3, 2, 5)
    assert (convs[c]["unread"], convs[c]["message_count"]) == (0, 2)
    assert [m["body"] for m in snap["messages"][a]] == ["a3", "a4", "a5"]
    assert [m["seq"] for m in snap["messages"][a]] == [3, 4, 5]
    assert [m["body"] for m in snap["messages"][c]] == ["c1", "c2"]
    # The snapshot's rows are the list's rows.
    listing = await srv.conversations("bob")
    assert sorted(listing["conversations"], key=lambda x: x["id"]) == sorted(
        snap["conversations"], key=lambda x: x["id"]
    )

    alice = (await srv.get("alice", "/snapshot", params={"messages": "1"})).json()
    assert {conv["id"] for conv in alice["conversations"]} == {a, b, c}
    assert alice["messages"] == {
        a: [snap["messages"][a][-1]],
        b: [],
        c: [snap["messages"][c][-1]],
    }
    for params in [{}, {"messages": "0"}]:
        plain = (await srv.get("bob", "/snapshot", params=params)).json()
        assert plain["messages"] == {} and len(plain["conversations"]) == 2


async def test_snapshot_head_is_read_before_the_data(srv: Harness) -> None:
    """Every change at or below a snapshot's head is reflected in it, so resuming the feed from
    that head can never miss anything, even with writes racing the snapshot."""
    created: dict[str, int] = {}

    async def writer() -> None:
        for i in range(60):
            r = await srv.create("alice", title=f"c{i}")
            created[r["conversation"]["id"]] = r["seq"]

    task = asyncio.create_task(writer())
    snaps = []
    for _ in range(200):
        if task.done():
            break
        snaps.append((await srv.get("alice", "/snapshot")).json())
    await task
    assert len(snaps) >= 3
    for snap in snaps:
        ids = {conv["id"] for conv in snap["conversations"]}
        missing = [cid for cid, seq in created.items() if seq <= snap["head"] and cid not in ids]
        assert not missing, f"snapshot at head {snap['head']} misses {missing}"

    # Snapshot plus the changes after its head is the whole state.
    snap = snaps[len(snaps) // 2]
    page = (await srv.get("alice", "/changes", params={"since": str(snap["head"])})).json()
    later = {ch["entity_id"] for ch in page["changes"]}
    assert {conv["id"] for conv in snap["conversations"]} | later == set(created)
    assert later == {cid for cid, seq in created.items() if seq > snap["head"]}


async def test_message_pages(srv: Harness) -> None:
    cid = (await srv.create("alice", members=["bob"]))["conversation"]["id"]
    for i in range(7):
        await srv.send("alice" if i % 2 else "bob", cid, f"m{i + 1}")

    async def page(**params: str) -> dict:
        r = await srv.get("bob", f"/conversations/{cid}/messages", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"messages", "total_count", "has_more"}
        assert body["total_count"] == 7
        return body

    def seqs(body: dict) -> list[int]:
        return [m["seq"] for m in body["messages"]]

    newest = await page(limit="3")
    assert seqs(newest) == [5, 6, 7] and newest["has_more"] is True
    assert [m["body"] for m in newest["messages"]] == ["m5", "m6", "m7"]
    assert [m["author"] for m in newest["messages"]] == ["bob", "alice", "bob"]
    older = await page(before="5", limit="3")
    assert seqs(older) == [2, 3, 4] and older["has_more"] is True
    oldest = await page(before="2", limit="3")
    assert seqs(oldest) == [1] and oldest["has_more"] is False
    assert seqs(await page(before="1")) == [] and (await page(before="1"))["has_more"] is False
    everything = await page()
    assert seqs(everything) == list(range(1, 8)) and everything["has_more"] is False
    exact = await page(limit="7")
    assert seqs(exact) == list(range(1, 8)) and exact["has_more"] is False
    assert seqs(await page(before="1000", limit="2")) == [6, 7]
    # Walking back page by page visits every message once.
    seen: list[int] = []
    before: str | None = None
    for _ in range(10):
        body = await page(limit="2", **({"before": before} if before else {}))
        seen = seqs(body) + seen
        if not body["has_more"]:
            break
        before = str(body["messages"][0]["seq"])
    assert seen == list(range(1, 8))
    m = newest["messages"][0]
    assert set(m) == {
        "id",
        "conversation_id",
        "seq",
        "author",
        "body",
        "created_at",
        "version",
        "edited_at",
        "deleted",
    }
    assert m["conversation_id"] == cid


async def test_changes_pages(srv: Harness) -> None:
    cid = (await srv.create("alice"))["conversation"]["id"]
    for i in range(6):
        await srv.send("alice", cid, f"m{i}")
    got: list[int] = []
    since = "0"
    for _ in range(10):
        r = await srv.get("alice", "/changes", params={"since": since, "limit": "3"})
        body = r.json()
        assert set(body) == {"epoch", "head", "min_retained", "changes", "has_more"}
        assert body["epoch"] == srv.epoch and body["head"] == 7
        got += [ch["seq"] for ch in body["changes"]]
        if not body["has_more"]:
            break
        since = f"{srv.epoch}:{body['changes'][-1]['seq']}"
    assert got == list(range(1, 8))
    change = (await srv.get("alice", "/changes", params={"since": "6"})).json()["changes"][0]
    assert set(change) == {"seq", "kind", "entity_id", "version", "data", "ts"}
    assert change["kind"] == "message.created" and change["data"]["message"]["body"] == "m5"
    at_head = (await srv.get("alice", "/changes", params={"since": "7"})).json()
    assert at_head["changes"] == [] and at_head["has_more"] is False
