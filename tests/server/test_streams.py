"""Stream mechanics: heartbeats, slow consumers, the per-user cap, disconnects and ``bye``."""

from __future__ import annotations

import asyncio
import itertools
import re
import statistics
import time

from core import protocol as p
from server.auth import now_ms
from tests.support.server_harness import API, Harness, MakeServer, assert_error
from tests.support.sse import Closed, Event, RawStream
from tests.support.waiting import equals, wait_until

HB = re.compile(r"hb (\d+)")


async def test_heartbeat_cadence_and_head(make_server: MakeServer) -> None:
    h = await make_server(heartbeat_s=0.3)
    cid = (await h.create("alice"))["conversation"]["id"]
    s = await h.stream("alice")
    bob = await h.stream("bob")
    assert s.hello["heartbeat_s"] == 0.3
    beats = [await s.comment(timeout=2) for _ in range(5)]
    assert [HB.fullmatch(c.text)[1] for c in beats] == ["1"] * 5  # type: ignore[index]
    times = [s.items[0].at] + [c.at for c in beats]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(0.25 <= g <= 0.8 for g in gaps), gaps
    assert 0.28 <= statistics.mean(gaps) <= 0.5, gaps

    msg = await h.send("alice", cid)
    [e] = await s.changes(1)
    assert e.json()["seq"] == msg["seq"] == 2
    beat = await s.comment(timeout=2)
    assert beat.text == "hb 2"
    # Each user's heartbeat carries their own head.
    bob_beats = [await bob.comment(timeout=2) for _ in range(3)]
    assert [c.text for c in bob_beats] == ["hb 0"] * 3


async def test_heartbeat_reveals_a_head_the_stream_has_not_delivered(
    make_server: MakeServer,
) -> None:
    """A change that reached storage without a push (another instance wrote it) is caught up
    at the next heartbeat at the latest."""
    h = await make_server(heartbeat_s=0.3)
    cid = (await h.create("alice"))["conversation"]["id"]
    s = await h.stream("alice")
    # Write behind the hub's back: straight into storage, no publish.
    req = p.MessageCreate(id="6f1c1c1e-0000-4000-8000-000000000001", body="quiet")
    loop = h.thread.server.loop
    assert loop is not None
    fut = asyncio.run_coroutine_threadsafe(
        h.ctx.storage.send_message(h.users["alice"].id, cid, req, now_ms()), loop
    )
    await asyncio.wrap_future(fut)
    [e] = await s.changes(1, timeout=3)
    assert e.json()["seq"] == 2
    assert e.json()["data"]["message"]["body"] == "quiet"


async def bob_queue(h: Harness) -> tuple[int, bool]:
    hub, uid = h.ctx.hub, h.users["bob"].id

    def look() -> tuple[int, bool]:
        [sub] = hub._subs[uid]
        return len(sub.queue), sub.overflowed

    return await h.on_server(look)


async def test_slow_consumer_is_reset_and_its_queue_stays_bounded(
    make_server: MakeServer,
) -> None:
    bound = 8
    h = await make_server(stream_queue_size=bound)
    cid = (await h.create("alice", members=["bob"]))["conversation"]["id"]
    raw = await RawStream.open(h.thread.host, h.thread.port, f"{API}/events", h.users["bob"].auth)
    try:
        await raw.read_headers()
        assert raw.status == 200
        hello = (await raw.read_until_event("hello")).json()
        assert hello["head"] == 1

        # bob stops reading; alice writes large messages until his queue overflows.
        body = "x" * 60_000
        peak, overflowed_at, sent = 0, None, 0
        for i in range(400):
            await h.send("alice", cid, body)
            sent += 1
            # Only a write grows the queue, so looking after each write sees its every peak.
            qlen, overflowed = await bob_queue(h)
            assert qlen <= bound, f"queue at {qlen} after {i + 1} writes"
            peak = max(peak, qlen)
            if overflowed and overflowed_at is None:
                overflowed_at = i
            if overflowed_at is not None and i >= overflowed_at + 5:
                break
        assert overflowed_at is not None, "bob's stream never overflowed"
        assert peak == bound  # it filled up to the bound, no further
        assert await bob_queue(h) == (0, True)  # emptied, and nothing queued after it

        # When bob reads again: what was already sent, then reset "slow", then the end.
        items = await raw.read_until_eof(timeout=15)
    finally:
        raw.close()
    events = [i for i in items if isinstance(i, Event)]
    assert isinstance(items[-1], Closed)
    assert [e.type for e in events[:1]] == ["hello"]
    changes = [e.json()["seq"] for e in events[1:-1]]
    assert all(e.type == "change" for e in events[1:-1])
    assert changes == list(range(2, 2 + len(changes)))
    assert len(changes) < sent
    assert events[-1].type == "reset"
    reset = events[-1].json()
    assert reset["reason"] == "slow"
    assert events[-1].id is None  # no id: a reconnect resumes from the last change received
    assert reset["head"] >= (changes[-1] if changes else 1)

    assert await h.metric("concord_slow_disconnects_total") == 1
    assert await h.metric("concord_stream_resets_total", reason="slow") == 1
    await wait_until(lambda: equals(h.hub_count("bob"), 0), timeout=3, what="bob unsubscribed")
    # bob catches up by pulling.
    since = changes[-1] if changes else 1
    page = (await h.get("bob", "/changes", params={"since": str(since), "limit": "500"})).json()
    assert [c["seq"] for c in page["changes"]] == list(range(since + 1, 2 + sent))


async def test_consumer_that_stops_reading_is_dropped_after_send_timeout(
    make_server: MakeServer,
) -> None:
    """No overflow needed: once a send blocks for send_timeout_s the stream is closed, its slot
    and memory freed, and it counts as a slow disconnect, not as a server error."""
    h = await make_server(send_timeout_s=0.5)
    # uvicorn notes, in one line, that the response was cut short; nothing else may be logged.
    h.allowed_errors.add("ASGI callable returned without completing response.")
    cid = (await h.create("alice", members=["bob"]))["conversation"]["id"]
    raw = await RawStream.open(h.thread.host, h.thread.port, f"{API}/events", h.users["bob"].auth)
    try:
        await raw.read_headers()
        await raw.read_until_event("hello")
        for _ in range(300):
            await h.send("alice", cid, "x" * 60_000)
            if await h.hub_count("bob") == 0:
                break
        await wait_until(lambda: equals(h.hub_count("bob"), 0), timeout=5, what="bob dropped")
        assert await h.metric("concord_slow_disconnects_total") == 1
        await wait_until(
            lambda: equals(h.metric("concord_open_streams"), 0.0), timeout=3, what="gauge at 0"
        )
        # bob can come back at once.
        s = await h.stream("bob", last_event_id=f"{h.epoch}:1")
        assert s.hello["resumed"] is True
    finally:
        raw.close()


async def test_stream_cap_per_user(srv: Harness) -> None:
    cap = srv.settings.max_streams_per_user
    assert cap == 16
    streams = [await srv.stream("alice") for _ in range(cap)]
    assert await srv.hub_count("alice") == cap
    r = await srv.refused_stream("alice")
    assert_error(r, 429, "too_many_streams")
    assert int(r.headers["retry-after"]) > 0
    # Other users are not affected.
    bob = await srv.stream("bob")

    # Closing one frees its slot at once (not at the next heartbeat, 15 s away).
    await streams[0].aclose()
    await wait_until(lambda: equals(srv.hub_count("alice"), cap - 1), timeout=2, what="a free slot")
    streams[0] = await srv.stream("alice")
    assert_error(await srv.refused_stream("alice"), 429, "too_many_streams")

    # And closing all of them frees everything.
    for s in [*streams, bob]:
        await s.aclose()
    await wait_until(lambda: equals(srv.hub_count(), 0), timeout=3, what="all streams freed")
    await wait_until(
        lambda: equals(srv.metric("concord_open_streams"), 0.0), timeout=3, what="gauge at 0"
    )


async def test_stream_cap_holds_when_streams_open_at_once(srv: Harness) -> None:
    cap = srv.settings.max_streams_per_user
    alice = srv.users["alice"]
    await srv.conversations("alice")  # the token is checked once already
    raws = [await RawStream.connect(srv.thread.host, srv.thread.port) for _ in range(cap + 8)]
    try:
        await asyncio.gather(*(r.send_request(f"{API}/events", alice.auth) for r in raws))
        for r in raws:
            await r.read_headers()
        statuses = sorted(r.status for r in raws)
        assert statuses == [200] * cap + [429] * 8
        assert await srv.hub_count("alice") == cap
    finally:
        for r in raws:
            r.close()
    await wait_until(lambda: equals(srv.hub_count(), 0), timeout=3, what="all streams freed")


async def test_head_request_on_events_opens_no_stream(srv: Harness) -> None:
    r = await srv.request("alice", "HEAD", "/events")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.content == b""
    await wait_until(lambda: equals(srv.hub_count(), 0), timeout=2, what="no subscription left")
    # ...and it does not use up the cap.
    for _ in range(srv.settings.max_streams_per_user + 2):
        assert (await srv.request("alice", "HEAD", "/events")).status_code == 200
    await srv.stream("alice")


async def test_bye_on_shutdown(srv: Harness) -> None:
    streams = [await srv.stream(u) for u in ("alice", "alice", "bob")]
    started = time.monotonic()
    stopping = asyncio.create_task(srv.stop())
    for s in streams:
        bye = await s.expect("bye", timeout=5)
        assert bye.json() == {"reason": "shutdown"}
        assert bye.retry is not None and 1000 <= bye.retry <= 5000
        await s.closed(timeout=5)
    await asyncio.wait_for(stopping, 10)
    assert time.monotonic() - started < 5


async def test_no_new_streams_once_shutting_down(srv: Harness) -> None:
    s = await srv.stream("alice")
    await srv.on_server(srv.ctx.hub.begin_shutdown)
    bye = await s.expect("bye")
    assert 1000 <= (bye.retry or 0) <= 5000
    await s.closed()
    r = await srv.refused_stream("bob")
    assert_error(r, 503, "shutting_down")
    assert int(r.headers["retry-after"]) > 0
    await wait_until(lambda: equals(srv.hub_count(), 0), timeout=3, what="no streams left")
