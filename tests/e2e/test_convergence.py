"""Two devices of one user and a second user, 500 random operations from all sides: afterwards
every client shows exactly the server's state, and no change was applied twice."""

from __future__ import annotations

import random

from tests.support.convergence import assert_converged, random_ops
from tests.support.waiting import wait_until


async def test_500_random_operations_converge(live_server, clients) -> None:
    a1 = await clients(live_server.url, "alice", "laptop")
    a2 = await clients(live_server.url, "alice", "desktop")
    b = await clients(live_server.url, "bob", "laptop")
    actors = [a1, a2, b]
    for c in actors:
        await wait_until(lambda c=c: c.status.state == "live", what="live")
    conflicts: list = []
    for c in actors:
        c.events.conflict.connect(conflicts.append)

    await random_ops(random.Random(20261124), actors, 500)

    for c in actors:
        await c.wait_synced(30)
    await assert_converged(live_server, actors)
