"""Two devices of one user and a second user, 500 random operations from all sides: afterwards
every client shows exactly the server's state, and no change was applied twice."""

from __future__ import annotations

import random

from .conftest import assert_converged, wait_until


async def random_ops(rng: random.Random, actors: list, n: int, pace=None) -> None:  # type: ignore[no-untyped-def]
    for i in range(n):
        if pace is not None:
            await pace()
        actor = rng.choice(actors)
        views = [v for v in actor.conversations() if not v.failed]
        roll = rng.random()
        others = [u for u in ("alice", "bob", "carol") if u != actor.me]
        if not views or roll < 0.12:
            members = [u for u in others if rng.random() < 0.7]
            await actor.create_conversation(f"conv {i}", members)
            continue
        view = rng.choice(views)
        if roll < 0.35:
            await actor.rename_conversation(view.id, f"title {i} by {actor.me}")
        elif roll < 0.45:
            await actor.set_pinned(view.id, not view.pinned)
        elif roll < 0.80:
            await actor.send_message(view.id, f"message {i} from {actor.me}")
        elif roll < 0.92:
            await actor.mark_read(view.id)
        elif view.creator == actor.me:
            await actor.delete_conversation(view.id)
        if pace is None and i % 7 == 0:
            await actor.wait_synced(20)  # pace by condition so sync interleaves with edits


async def test_500_random_operations_converge(live_server, clients) -> None:
    a1 = await clients(live_server.url, "alice", "laptop")
    a2 = await clients(live_server.url, "alice", "desktop")
    b = await clients(live_server.url, "bob", "laptop")
    actors = [a1, a2, b]
    for c in actors:
        await wait_until(lambda c=c: c.status.state == "live", what="live")
    conflicts: list = []
    for c in actors:
        c.on("conflict", conflicts.append)

    await random_ops(random.Random(20261124), actors, 500)

    for c in actors:
        await c.wait_synced(30)
    await assert_converged(live_server, actors)
