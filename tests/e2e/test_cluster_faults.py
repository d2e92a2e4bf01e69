"""Real server instances on one PostgreSQL database and one Redis, when things happen to them
(docs/architecture.md §6, issue 13 "Tests with real engines", points 5-7): a restore with a new
epoch resets every stream; a SIGTERM'd instance says ``bye`` and its clients continue on another
one behind the router; and the desktop client's full sync and outbox work against a two-instance
deployment whose instances are stopped and killed under it."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx

from tests.e2e.cluster_support import MakeCluster, Net, message_of, seq_of
from tests.support.cluster import Cluster
from tests.support.convergence import client_state, server_state
from tests.support.live_server import MakeClient
from tests.support.server_cli import cli
from tests.support.waiting import wait_until


def write_new_epoch(database_url: str) -> int:
    """What an operator does after restoring a PostgreSQL dump, every instance stopped."""
    done = cli("new-epoch", "--database", database_url)
    assert done.returncode == 0, done.stderr
    found = re.search(r"is now epoch (\d+)", done.stdout)
    assert found, done.stdout
    return int(found.group(1))


async def test_a_restore_with_a_new_epoch_resets_streams_on_every_instance(
    make_cluster: MakeCluster, net: Net
) -> None:
    cluster = await make_cluster(2)
    await net.login(cluster.url(0))
    stream, hello = await net.stream(cluster.url(0), "alice")
    old_epoch = hello.json()["epoch"]
    cid = await net.create(cluster.url(1), "alice", ["bob"])
    last = (await stream.expect("change")).id
    assert last is not None
    await asyncio.gather(*(i.stop() for i in cluster.instances))
    assert (await stream.expect("bye")).json()["reason"] == "shutdown"
    new_epoch = await asyncio.to_thread(write_new_epoch, cluster.database_url)
    assert new_epoch != old_epoch
    await asyncio.gather(*(i.start() for i in cluster.instances))
    for i in range(2):  # (the tokens from before are still good: the sessions were restored)
        again, hello = await net.stream(cluster.url(i), "alice", last_event_id=last)
        body = hello.json()
        assert body["epoch"] == new_epoch and body["resumed"] is False and hello.id is None
        reset = await again.expect("reset")
        head = reset.json()["head"]
        assert reset.json()["reason"] == "epoch_changed"
        assert reset.id == f"{new_epoch}:{head}"
        mid, _ = await net.send(cluster.url(1 - i), "bob", cid, f"after the restore {i}")
        live = await again.expect("change")  # live from the reset's head, in the new epoch
        assert live.id == f"{new_epoch}:{head + 1}"
        assert message_of(live)["id"] == mid  # type: ignore[index]


def test_new_epoch_is_for_postgresql_only(tmp_path) -> None:
    done = cli("new-epoch", "--database", str(tmp_path / "concord.db"))
    assert done.returncode == 2 and "use restore" in done.stderr


async def test_sigterm_says_bye_and_the_client_continues_on_another_instance(
    make_cluster: MakeCluster, net: Net
) -> None:
    cluster = await make_cluster(3)
    router = cluster.router()
    router.choose(0)
    await net.login(cluster.url(1))
    async with httpx.AsyncClient() as first_conn:
        stream, _ = await net.stream(router.url, "alice", http=first_conn)
        assert router.routed[0] == 1
        cid = await net.create(cluster.url(2), "alice", ["bob"])
        last = (await stream.expect("change")).id
        proc = cluster.instances[0].proc
        assert proc is not None
        proc.terminate()  # SIGTERM
        bye = await stream.expect("bye")
        assert bye.json()["reason"] == "shutdown" and bye.retry is not None
        await stream.closed()
        # Written while the client waits out its retry: must come with the resumed backlog.
        missed, _ = await net.send(cluster.url(2), "bob", cid, "while away")
        await asyncio.wait_for(proc.wait(), 10)
    async with httpx.AsyncClient() as second_conn:
        again, hello = await net.stream(router.url, "alice", last_event_id=last, http=second_conn)
        assert router.routed[1] == 1, router.routed  # the next live instance
        assert hello.json()["resumed"] is True
        backlog = await again.expect("change")
        assert message_of(backlog)["id"] == missed  # type: ignore[index]
        later, _ = await net.send(cluster.url(2), "bob", cid, "later")
        live = await again.expect("change")
        assert message_of(live)["id"] == later  # type: ignore[index]
        assert seq_of(live) == seq_of(backlog) + 1
        await again.comment(timeout=3)  # and nothing twice


async def converged(api_net: Net, url: str, clients: list[Any]) -> None:
    """Every client shows what its user's snapshot (read through ``url``) shows."""
    for c in clients:
        want = server_state(await api_net.snapshot(url, c.me))
        await wait_until(
            lambda c=c, want=want: client_state(c) == want,
            f"{c.me}'s client to equal the server",
            timeout=20,
            detail=lambda c=c: client_state(c),
        )
        seqs = [seq for seq, _, _ in c.store.applied_log()]
        assert len(seqs) == len(set(seqs)), "a change was applied twice"


async def test_the_desktop_client_syncs_through_instances_stopped_and_killed_under_it(
    make_cluster: MakeCluster, net: Net, clients: MakeClient
) -> None:
    cluster: Cluster = await make_cluster(2)
    router = cluster.router()
    router.choose(0)
    await net.login(cluster.url(1))
    alice = await clients(router.url, "alice", "laptop")
    bob = await clients(router.url, "bob", "laptop")
    for c in (alice, bob):
        await wait_until(lambda c=c: c.status.state == "live", "live")
    view = await alice.create_conversation("across instances", ["bob"])
    for i in range(3):
        await alice.send_message(view.id, f"before {i}")
    await alice.wait_synced(20)

    # SIGTERM the instance behind the router while writing: the outbox carries the writes over.
    first = cluster.instances[0]
    stopping = asyncio.create_task(first.stop())
    for i in range(5):
        await alice.send_message(view.id, f"during the stop {i}")
        await bob.send_message(view.id, f"bob during the stop {i}")
    await stopping
    await alice.wait_synced(30)
    await bob.wait_synced(30)
    assert router.routed[1] > 0, router.routed  # the clients moved to the other instance
    await converged(net, cluster.url(1), [alice, bob])

    # Bring it back, route to it, and SIGKILL the other one (where the clients now are).
    await first.start()
    on_first = router.routed[0]
    second = cluster.instances[1]
    killing = asyncio.create_task(second.kill())
    for i in range(5):
        await alice.send_message(view.id, f"during the kill {i}")
        await bob.rename_conversation(view.id, f"renamed {i}")
    await killing
    await alice.wait_synced(30)
    await bob.wait_synced(30)
    assert router.routed[0] > on_first, router.routed  # and came back to the first
    await converged(net, cluster.url(0), [alice, bob])
    assert len(alice.messages(view.id)) == 18

    # A new device's full sync against the deployment gives the same state.
    fresh = await clients(router.url, "alice", "desktop")
    await wait_until(lambda: fresh.status.state == "live", "the new device live")
    await second.start()
    await converged(net, cluster.url(1), [fresh, alice])
