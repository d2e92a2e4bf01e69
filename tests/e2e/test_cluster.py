"""Three real server instances on one PostgreSQL database and one Redis (docs/architecture.md
§6, issue 13 "Tests with real engines", points 1-4): the test picks the instance. A write
through one instance reaches streams on the others at once (a Redis poke), or within a
heartbeat with Redis down; a stream resumes on another instance with ``Last-Event-ID``; and
concurrent writes through every instance give every member gap-free seqs in one order.
Points 5-7 (restore, SIGTERM, the desktop client) are in ``test_cluster_faults.py``."""

from __future__ import annotations

import asyncio
import time

from tests.e2e.cluster_support import MakeCluster, Net, message_of, seq_of
from tests.support.procs import free_port
from tests.support.services import private_redis
from tests.support.sse import Event, SSEStream


async def until_message(s: SSEStream, mid: str, timeout: float = 5.0) -> Event:
    """Read changes until the one creating message ``mid`` (the others must be changes)."""
    deadline = time.monotonic() + timeout
    for _ in range(1000):
        event = await s.expect("change", max(0.0, deadline - time.monotonic()))
        message = message_of(event)
        if message is not None and message["id"] == mid:
            return event
    raise AssertionError("too many changes")


async def test_a_write_through_one_instance_reaches_streams_on_the_others_at_once(
    make_cluster: MakeCluster, net: Net
) -> None:
    cluster = await make_cluster(3)
    await net.login(cluster.url(2))
    alice, _ = await net.stream(cluster.url(0), "alice")
    bob, _ = await net.stream(cluster.url(1), "bob")
    cid = await net.create(cluster.url(2), "alice", ["bob"])
    # The conversation's change reaching both also means both instances listen to their users.
    await alice.expect("change")
    await bob.expect("change")
    for i in range(3):
        mid, answered = await net.send(cluster.url(2), "alice", cid, f"hello {i}")
        for s in (alice, bob):
            event = await until_message(s, mid)
            assert event.at - answered < 1.0, f"took {event.at - answered:.3f}s"


async def test_a_write_just_after_a_stream_opens_does_not_wait_for_a_heartbeat(
    make_cluster: MakeCluster, net: Net
) -> None:
    """The instance subscribes to a user's channel when their first stream opens; a write on
    another instance in that moment is poked to nobody. Once Redis confirms the subscription the
    instance re-reads the head, so the write arrives at once, not at the next heartbeat (60 s)."""
    cluster = await make_cluster(2, heartbeat=60.0)
    await net.login(cluster.url(1))
    cid = await net.create(cluster.url(1), "bob", ["alice"])
    for i in range(3):  # a fresh stream each time (the first one is alice's first there)
        alice, _ = await net.stream(cluster.url(0), "alice")
        mid, answered = await net.send(cluster.url(1), "bob", cid, f"right away {i}")
        event = await until_message(alice, mid, timeout=10)
        assert event.at - answered < 1.0, f"took {event.at - answered:.3f}s"
        await alice.aclose()


async def test_with_redis_down_a_write_still_arrives_within_a_heartbeat(
    make_cluster: MakeCluster, net: Net, tmp_path
) -> None:
    port = free_port()
    with private_redis(port, tmp_path) as redis:
        cluster = await make_cluster(3, redis=f"redis://127.0.0.1:{port}/0", heartbeat=1.0)
        await net.login(cluster.url(2))
        alice, _ = await net.stream(cluster.url(0), "alice")
        cid = await net.create(cluster.url(2), "alice", ["bob"])
        await alice.expect("change")
        redis.terminate()
        redis.wait(10)
        for i in range(2):
            mid, answered = await net.send(cluster.url(2), "alice", cid, f"no redis {i}")
            event = await until_message(alice, mid, timeout=5)
            assert event.at - answered < 2.5, f"took {event.at - answered:.3f}s"
        # Other instances still serve as well: a stream opens and a write arrives on it.
        bob, _ = await net.stream(cluster.url(1), "bob")
        mid, answered = await net.send(cluster.url(0), "alice", cid, "still no redis")
        event = await until_message(bob, mid, timeout=5)
        assert event.at - answered < 2.5, f"took {event.at - answered:.3f}s"


async def test_a_stream_resumes_on_another_instance_missing_nothing_and_nothing_twice(
    make_cluster: MakeCluster, net: Net
) -> None:
    cluster = await make_cluster(3)
    await net.login(cluster.url(0))
    first, hello = await net.stream(cluster.url(0), "alice")
    epoch = hello.json()["epoch"]
    cid = await net.create(cluster.url(2), "alice", ["bob"])
    created = await first.expect("change")
    last = seq_of(created)
    await first.aclose()  # the cut
    written = [
        (await net.send(cluster.url(i % 3), "alice" if i % 2 else "bob", cid, f"gap {i}"))[0]
        for i in range(9)
    ]
    second, hello = await net.stream(cluster.url(1), "alice", last_event_id=f"{epoch}:{last}")
    assert hello.json()["resumed"] is True
    assert hello.id == f"{epoch}:{last}"
    backlog = await second.changes(len(written))
    assert [seq_of(e) for e in backlog] == list(range(last + 1, last + 1 + len(written)))
    assert [message_of(e)["id"] for e in backlog] == written  # type: ignore[index]
    mid, _ = await net.send(cluster.url(2), "bob", cid, "live")
    live = await second.expect("change")
    assert seq_of(live) == last + len(written) + 1
    assert message_of(live)["id"] == mid  # type: ignore[index]
    # Nothing twice: the next thing on the stream is the heartbeat, not a repeated change.
    await second.comment(timeout=3)


async def test_concurrent_writes_through_every_instance_give_every_member_one_gap_free_order(
    make_cluster: MakeCluster, net: Net
) -> None:
    cluster = await make_cluster(3)
    await net.login(cluster.url(0))
    members = ("alice", "bob", "carol")
    streams = [(await net.stream(cluster.url(i), user))[0] for i, user in enumerate(members)]
    cid = await net.create(cluster.url(0), "alice", ["bob", "carol"])
    starts = [seq_of(await s.expect("change")) for s in streams]
    per_instance = 20

    async def writer(i: int) -> list[str]:
        return [
            (await net.send(cluster.url(i), members[i], cid, f"{members[i]} {n}"))[0]
            for n in range(per_instance)
        ]

    # Three writers at once, one per instance, each writing through its own instance.
    written = await asyncio.gather(*(writer(i) for i in range(3)))
    everything = {mid for ids in written for mid in ids}
    orders = []
    for s, start in zip(streams, starts, strict=True):
        events = await s.changes(len(everything), timeout=15)
        seqs = [seq_of(e) for e in events]
        assert seqs == list(range(start + 1, start + 1 + len(everything))), "a gap or a repeat"
        messages = [message_of(e) for e in events]
        assert all(m is not None for m in messages)
        assert {m["id"] for m in messages} == everything  # type: ignore[index]
        conversation_seqs = [m["seq"] for m in messages]  # type: ignore[index]
        assert conversation_seqs == sorted(conversation_seqs), "feed order ≠ conversation order"
        orders.append([m["id"] for m in messages])  # type: ignore[index]
    assert orders[0] == orders[1] == orders[2], "members saw different orders"
    for ids in written:  # and each writer's own messages in the order it wrote them
        assert [mid for mid in orders[0] if mid in set(ids)] == ids
