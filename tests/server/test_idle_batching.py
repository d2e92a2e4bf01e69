"""Idle work batched (docs/architecture.md §4.7): the heads and session checks of the streams
whose heartbeats are due together are one read each; a user's streams behind by the same range
share one catch-up read; the hub's ticker touches only what is due or sending."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core import protocol as p
from server.auth import session_of, token_hash
from server.batch import Batcher, FeedReads, SingleFlight
from server.feed import FeedHub
from server.storage import FeedState, NewSession, Storage, StoredChange
from server.storage.factory import storage_for
from tests.support.server_harness import MakeServer

HB = re.compile(r"hb (\d+)")


async def test_batcher_fetches_the_keys_of_one_loop_iteration_together() -> None:
    calls: list[list[int]] = []

    async def fetch(keys: list[int]) -> dict[int, str]:
        calls.append(sorted(keys))
        return {k: f"v{k}" for k in keys if k != 3}

    b: Batcher[int, str] = Batcher(fetch, "none")
    got = await asyncio.gather(*(b.get(k % 5) for k in range(50)))
    assert calls == [[0, 1, 2, 3, 4]]
    assert got[:5] == ["v0", "v1", "v2", "none", "v4"]
    assert await b.get(7) == "v7"  # a later iteration: a second fetch
    assert b.batches == 2


async def test_batcher_gives_every_waiter_the_error_and_survives_a_cancelled_one() -> None:
    gate = asyncio.Event()

    async def fetch(keys: list[int]) -> dict[int, int]:
        await gate.wait()
        if 9 in keys:
            raise OSError("database gone")
        return {k: k for k in keys}

    b: Batcher[int, int] = Batcher(fetch, -1)
    first = asyncio.ensure_future(b.get(1))
    second = asyncio.ensure_future(b.get(1))
    await asyncio.sleep(0)
    first.cancel()  # one stream of the user ends: the other still gets its answer
    gate.set()
    assert await second == 1
    failing = [asyncio.ensure_future(b.get(k)) for k in (8, 9)]
    results = await asyncio.gather(*failing, return_exceptions=True)
    assert all(isinstance(r, OSError) for r in results)


async def test_single_flight_shares_a_read_and_falls_back_when_its_reader_is_cancelled() -> None:
    reads = 0
    gate = asyncio.Event()

    async def read() -> int:
        nonlocal reads
        reads += 1
        await gate.wait()
        return reads

    sf: SingleFlight[str, int] = SingleFlight()
    leader = asyncio.ensure_future(sf.run("k", read))
    await asyncio.sleep(0)
    followers = [asyncio.ensure_future(sf.run("k", read)) for _ in range(3)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(leader, *followers) == [1, 1, 1, 1]
    assert reads == 1
    gate.clear()
    leader = asyncio.ensure_future(sf.run("k", read))
    await asyncio.sleep(0)
    follower = asyncio.ensure_future(sf.run("k", read))
    await asyncio.sleep(0)
    leader.cancel()
    await asyncio.sleep(0)
    gate.set()
    assert await follower == 3  # read again by itself, not cancelled with the leader


async def test_feed_reads_batch_heads_and_share_pages() -> None:
    class Counting:
        heads_calls: list[list[int]] = []
        page_calls = 0
        page_wants: list[list[tuple[int, int, int]]] = []

        async def feed_heads(self, user_ids: list[int]) -> dict[int, FeedState]:
            self.heads_calls.append(sorted(user_ids))
            return {u: FeedState(u * 10, 1) for u in user_ids}

        async def changes_since_many(
            self, wants: list[tuple[int, int, int]]
        ) -> dict[tuple[int, int, int], list[StoredChange]]:
            self.page_calls += 1
            self.page_wants.append(sorted(wants))
            await asyncio.sleep(0.01)
            return {(u, s, n): [StoredChange(u, s + 1, b"{}")] for u, s, n in wants}

    storage = Counting()
    reads = FeedReads(storage)  # type: ignore[arg-type]
    heads = await asyncio.gather(*(reads.head(u) for u in (1, 2, 2, 3)))
    assert heads == [10, 20, 20, 30]
    assert storage.heads_calls == [[1, 2, 3]]
    pages = await asyncio.gather(*(reads.changes_since(5, 7, 500) for _ in range(3)))
    assert storage.page_calls == 1 and pages[0] == pages[2]
    await reads.changes_since(5, 8, 500)
    assert storage.page_calls == 2
    # The users a broadcast poked, each behind from its own cursor: one read for them all.
    poked = await asyncio.gather(*(reads.changes_since(u, u, 500) for u in range(10, 20)))
    assert storage.page_calls == 3
    assert storage.page_wants[-1] == [(u, u, 500) for u in range(10, 20)]
    assert [rows[0].seq for rows in poked] == [u + 1 for u in range(10, 20)]


async def test_ticker_wakes_what_is_due_and_times_only_sends_in_progress() -> None:
    hub = FeedHub(1)
    subs = [hub.subscribe(i, 10) for i in range(100)]
    for i, sub in enumerate(subs):
        hub.schedule(sub, 10.0 + i)
    hub.schedule(subs[0], 10.0)  # the same deadline again: no second entry
    hub.schedule(subs[1], 500.0)  # moved later: its old entry is skipped when it comes up
    assert hub.pending_wakes == 101
    hub.tick(10.5)
    assert [s for s in subs if s.wake.is_set()] == [subs[0]]
    hub.tick(15.0)
    assert {i for i, s in enumerate(subs) if s.wake.is_set()} == {0, 2, 3, 4, 5}
    assert hub.pending_wakes == 95
    hub.unsubscribe(subs[6])
    hub.tick(16.0)
    assert not subs[6].wake.is_set()

    async def blocked() -> None:
        await asyncio.sleep(3600)

    task = asyncio.ensure_future(blocked())
    hub.begin_send(subs[50], task, 20.0)
    assert hub.sends_in_progress == 1
    hub.tick(45.0, send_timeout=30.0)
    assert not task.cancelled() and not subs[50].send_expired
    hub.tick(51.0, send_timeout=30.0)
    await asyncio.sleep(0)
    assert task.cancelled() and subs[50].send_expired
    hub.end_send(subs[50])
    assert hub.sends_in_progress == 0


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    database: str | Path = tmp_path / "concord.db"
    if request.param == "postgres":
        database = request.getfixturevalue("fresh_postgres")
    s = storage_for(database, durable=False)
    await s.open()
    yield s
    await s.close()


async def test_storage_reads_heads_and_live_sessions_in_one_call(store: Storage) -> None:
    a = await store.add_user("ann", "h", 1)
    b = await store.add_user("ben", "h", 1)
    far = 2**50
    for i, user in enumerate((a, a, b)):
        pair = NewSession(token_hash(f"r{i}"), far, token_hash(f"a{i}"), far)
        await store.start_session(f"s{i}", user, pair, 1)
    await store.revoke_sessions(b, "s2", 2)
    heads = await store.feed_heads([a, b, 999_999])
    assert heads == {a: await store.feed_state(a), b: await store.feed_state(b)}
    assert await store.feed_heads([]) == {}
    live = await store.sessions_live(["s0", "s1", "s2", "nope", ""], 3)
    assert live == {"s0", "s1", ""}
    assert await store.sessions_live([], 3) == set()


async def test_storage_reads_many_feed_pages_in_one_call(store: Storage) -> None:
    a = await store.add_user("ann", "h", 1)
    b = await store.add_user("ben", "h", 1)
    c = await store.add_user("cid", "h", 1)
    cid = "00000000-0000-4000-8000-000000000001"
    await store.create_conversation(a, p.ConversationCreate(cid, "t", ["ben"]), 1)
    for i in range(5):
        mid = f"00000000-0000-4000-8000-00000000001{i}"
        await store.send_message(a, cid, p.MessageCreate(mid, f"m{i}"), 2)
    wants = [(a, 0, 500), (a, 3, 2), (b, 4, 500), (c, 0, 500), (999_999, 0, 10)]
    many = await store.changes_since_many(wants)
    assert set(many) == set(wants)
    for want in wants:
        assert many[want] == await store.changes_since(*want), want
    assert [ch.seq for ch in many[(a, 3, 2)]] == [4, 5]
    assert many[(c, 0, 500)] == [] and many[(999_999, 0, 10)] == []
    assert await store.changes_since_many([]) == {}


async def test_streams_heartbeat_right_with_batched_reads(make_server: MakeServer) -> None:
    """Twelve streams of three users on a 0.3 s heartbeat: each beats with its own user's head,
    and the server read the heads in fewer queries than it sent heartbeats."""
    h = await make_server(heartbeat_s=0.3, token_recheck_s=0.2)
    cid = (await h.create("alice"))["conversation"]["id"]
    await h.send("alice", cid)
    names = ["alice", "bob", "carol"] * 4
    streams = await asyncio.gather(*(h.stream(n) for n in names))
    heads = {n: await h.head(n) for n in set(names)}
    batches_before = await h.on_server(lambda: h.ctx.reads.head_batches)
    beats = [[await s.comment(timeout=3) for _ in range(3)] for s in streams]
    for name, got in zip(names, beats, strict=True):
        assert [HB.fullmatch(c.text)[1] for c in got] == [str(heads[name])] * 3  # type: ignore[index]
    batches = await h.on_server(lambda: h.ctx.reads.head_batches) - batches_before
    assert 0 < batches * 2 <= 12 * 3, batches
    # A revocation made behind this instance's back ends the stream at a heartbeat.
    s = streams[1]
    uid = h.users["bob"].id
    session = session_of(h.users["bob"].refresh_token)
    loop = h.thread.server.loop
    assert loop is not None
    await asyncio.wrap_future(
        asyncio.run_coroutine_threadsafe(h.ctx.storage.revoke_sessions(uid, session, 1), loop)
    )
    await s.expect("expired", timeout=5)
