"""Resuming the change feed (``Last-Event-ID``, ``?since=``), and the resets when a cursor
cannot be resumed: too old, foreign epoch, ahead of the feed, or garbage."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.server_harness import Harness, MakeServer, assert_error, event_id
from tests.support.sse import Event, SSEStream


def seqs(events: list[Event]) -> list[int]:
    return [e.json()["seq"] for e in events]


def check_ids(h: Harness, events: list[Event]) -> None:
    for e in events:
        assert e.id == event_id(h, e.json()["seq"])


async def test_resume_with_last_event_id_delivers_exactly_the_missed_changes(
    srv: Harness,
) -> None:
    conv = (await srv.create("alice"))["conversation"]
    s = await srv.stream("alice", since="0")
    first = await s.changes(1)
    await srv.send("alice", conv["id"], "one")
    first += await s.changes(1)
    assert seqs(first) == [1, 2]
    last_id = first[-1].id
    await s.aclose()

    missed = [await srv.send("alice", conv["id"], f"missed {i}") for i in range(3)]
    assert [m["seq"] for m in missed] == [3, 4, 5]

    s2 = await srv.stream("alice", last_event_id=last_id)
    assert s2.hello["resumed"] is True
    assert s2.hello["head"] == 5
    got = await s2.changes(3)
    check_ids(srv, got)
    assert seqs(got) == [3, 4, 5]
    assert [e.json()["data"]["message"]["body"] for e in got] == [f"missed {i}" for i in range(3)]
    live = await srv.send("alice", conv["id"], "live")
    [e6] = await s2.changes(1)
    assert e6.json()["seq"] == live["seq"] == 6
    # No duplicate follows: the next thing in the feed is the next write.
    await srv.send("alice", conv["id"], "live 2")
    [e7] = await s2.changes(1)
    assert e7.json()["seq"] == 7


@pytest.mark.parametrize("form", ["event-id", "bare-seq"])
async def test_resume_with_since_query(srv: Harness, form: str) -> None:
    conv = (await srv.create("alice"))["conversation"]
    for i in range(4):
        await srv.send("alice", conv["id"], f"m{i}")
    since = event_id(srv, 2) if form == "event-id" else "2"
    s = await srv.stream("alice", since=since)
    assert s.hello["resumed"] is True
    got = await s.changes(3)
    check_ids(srv, got)
    assert seqs(got) == [3, 4, 5]


async def test_last_event_id_header_wins_over_since(srv: Harness) -> None:
    conv = (await srv.create("alice"))["conversation"]
    for i in range(3):
        await srv.send("alice", conv["id"], f"m{i}")
    s = await srv.stream("alice", last_event_id=event_id(srv, 3), since="0")
    [e] = await s.changes(1)
    assert e.json()["seq"] == 4


async def test_fresh_stream_without_cursor_starts_live_at_head(srv: Harness) -> None:
    conv = (await srv.create("alice"))["conversation"]
    s = await srv.stream("alice")
    assert s.hello["resumed"] is False and s.hello["head"] == 1
    msg = await srv.send("alice", conv["id"])
    [e] = await s.changes(1)
    assert e.json()["seq"] == msg["seq"] == 2


async def test_resume_while_writes_race_is_gapless_and_duplicate_free(srv: Harness) -> None:
    conv = (await srv.create("alice"))["conversation"]
    for i in range(30):
        await srv.send("alice", conv["id"], f"before {i}")

    async def writer() -> None:
        for i in range(40):
            await srv.send("alice", conv["id"], f"during {i}")

    task = asyncio.create_task(writer())
    s = await srv.stream("alice", last_event_id=event_id(srv, 5))
    await task
    head = await srv.head("alice")
    assert head == 71
    got = await s.changes(head - 5, timeout=10)
    check_ids(srv, got)
    assert seqs(got) == list(range(6, head + 1))


async def test_multibyte_and_newlines_survive_the_stream(srv: Harness) -> None:
    conv = (await srv.create("alice", title="Ünïcödé ✓ \U0001f600"))["conversation"]
    s = await srv.stream("alice")
    body = "line one\nline two\r\nline three\r\u2028€ \U0001f600 end"
    await srv.send("alice", conv["id"], body)
    [e] = await s.changes(1)
    assert e.json()["data"]["message"]["body"] == body
    snap = (await srv.get("alice", "/snapshot")).json()
    assert snap["conversations"][0]["title"] == "Ünïcödé ✓ \U0001f600"


# --- resets -----------------------------------------------------------------------------------


async def expect_reset(s: SSEStream, reason: str) -> dict:
    assert s.hello["resumed"] is False
    reset = await s.expect("reset")
    body = reset.json()
    assert body == {"reason": reason, "head": s.hello["head"]}
    return body


async def test_too_old_cursor_resets_and_continues_live(make_server: MakeServer) -> None:
    h = await make_server(retention=5)
    conv = (await h.create("alice"))["conversation"]
    for i in range(15):
        await h.send("alice", conv["id"], f"m{i}")
    page = (await h.get("alice", "/changes", params={"since": "16"})).json()
    min_retained = page["min_retained"]
    assert min_retained > 2  # history was trimmed

    s = await h.stream("alice", last_event_id=event_id(h, 1))
    await expect_reset(s, "cursor_expired")
    assert s.hello["min_retained"] == min_retained
    # After the reset the stream is live from hello.head: no old changes are replayed.
    msg = await h.send("alice", conv["id"], "after reset")
    [e] = await s.changes(1)
    assert e.json()["seq"] == msg["seq"] == s.hello["head"] + 1

    # Pulling: too old is 410 cursor_expired; the oldest resumable cursor still works.
    page = (await h.get("alice", "/changes", params={"since": str(msg["seq"])})).json()
    min_retained = page["min_retained"]
    r = await h.get("alice", "/changes", params={"since": event_id(h, 1)})
    assert_error(r, 410, "cursor_expired")
    r = await h.get("alice", "/changes", params={"since": str(min_retained - 2)})
    assert_error(r, 410, "cursor_expired")
    r = await h.get("alice", "/changes", params={"since": str(min_retained - 1)})
    assert r.status_code == 200
    assert r.json()["changes"][0]["seq"] == min_retained
    # ...and the stream resumes from it too.
    s2 = await h.stream("alice", last_event_id=event_id(h, min_retained - 1))
    assert s2.hello["resumed"] is True
    got = await s2.changes(msg["seq"] - min_retained + 1)
    assert seqs(got) == list(range(min_retained, msg["seq"] + 1))


async def test_tombstones_survive_while_retained(make_server: MakeServer) -> None:
    h = await make_server(retention=5)
    conv = (await h.create("alice", members=["bob"]))["conversation"]
    r = await h.request("alice", "DELETE", f"/conversations/{conv['id']}?base_version=1")
    assert r.status_code == 200
    for _ in range(3):
        await h.create("alice")
    changes = (await h.get("bob", "/changes", params={"since": "0"})).json()["changes"]
    assert [c["kind"] for c in changes] == ["conversation.upserted", "conversation.deleted"]


async def test_foreign_epoch_resets(srv: Harness) -> None:
    await srv.create("alice")
    foreign = srv.epoch + 1
    s = await srv.stream("alice", last_event_id=f"{foreign}:0")
    await expect_reset(s, "epoch_changed")
    r = await srv.get("alice", "/changes", params={"since": f"{foreign}:0"})
    assert_error(r, 410, "epoch_changed")
    s2 = await srv.stream("alice", since=f"{foreign}:1")
    await expect_reset(s2, "epoch_changed")


async def test_cursor_ahead_of_the_feed_resets(srv: Harness) -> None:
    await srv.create("alice")
    s = await srv.stream("alice", last_event_id=event_id(srv, 999_999_999))
    await expect_reset(s, "cursor_ahead")
    r = await srv.get("alice", "/changes", params={"since": event_id(srv, 999_999_999)})
    assert_error(r, 410, "cursor_ahead")
    # The head itself is fine.
    s2 = await srv.stream("alice", last_event_id=event_id(srv, 1))
    assert s2.hello["resumed"] is True


GARBAGE_IDS: list[str | bytes] = [
    "abc",
    "-1",
    "1:2:3",
    ":",
    "12:",
    ":5",
    "1.5",
    "99999999999999999999:1",
    "1:-2",
    "\u0663:\u0663".encode(),  # Arabic-Indic digits: str.isdigit() is true for them
]


async def test_garbage_last_event_id_gives_hello_then_reset(srv: Harness) -> None:
    conv = (await srv.create("alice"))["conversation"]
    for garbage in GARBAGE_IDS:
        s = await srv.stream("alice", last_event_id=garbage)
        await expect_reset(s, "invalid_cursor")
        msg = await srv.send("alice", conv["id"])
        [e] = await s.changes(1)
        assert e.json()["seq"] == msg["seq"], garbage
        await s.aclose()
    assert await srv.metric("concord_stream_resets_total", reason="invalid_cursor") == len(
        GARBAGE_IDS
    )


async def test_garbage_since_is_400(srv: Harness) -> None:
    # (An empty since= is no cursor: tests/server/test_schema.py.)
    for garbage in ["abc", "-1", "1:x", "99999999999999999999", "\u0663", " 5", "5\n"]:
        r = await srv.refused_stream("alice", since=garbage)
        assert_error(r, 400, "invalid_cursor")
        r = await srv.get("alice", "/changes", params={"since": garbage})
        assert_error(r, 400, "invalid_cursor")
