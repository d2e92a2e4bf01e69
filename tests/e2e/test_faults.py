"""The network misbehaves: every client talks through a fault-injecting proxy that cuts
connections, black-holes, delays and answers with text/html, 50 random faults each, while all
sides edit. Afterwards every client equals the server, and no change was applied twice."""

from __future__ import annotations

import asyncio
import collections
import random

from core.engine import EngineConfig
from tests.support.convergence import assert_converged, random_ops
from tests.support.faultproxy import FaultProxy
from tests.support.waiting import wait_until

QUICK = EngineConfig(
    backoff_base_s=0.05, backoff_cap_s=0.5, poll_after_s=0.3, poll_min_s=0.2, poll_max_s=1.0
)


async def test_fifty_random_faults_lose_nothing_and_apply_nothing_twice(
    live_server, clients
) -> None:
    host, port = "127.0.0.1", live_server.thread.port
    proxies = [FaultProxy(upstream=(host, port)).start() for _ in range(3)]
    try:
        a1, a2, b = [
            await clients(proxy.url, user, device, engine=QUICK, request_timeout_s=2.0)
            for proxy, (user, device) in zip(
                proxies,
                [("alice", "laptop"), ("alice", "desktop"), ("bob", "laptop")],
                strict=True,
            )
        ]
        actors = [a1, a2, b]
        for c in actors:
            await wait_until(lambda c=c: c.status.state == "live", what="live")
        rng = random.Random(77)
        faults = [
            asyncio.to_thread(
                p.random_faults,
                random.Random(i),
                n=50,
                min_gap_s=0.02,
                max_gap_s=0.15,
                dur_s=(0.05, 0.4),
                delay_s=(0.05, 0.3),
            )
            for i, p in enumerate(proxies)
        ]

        async def pace() -> None:
            await asyncio.sleep(rng.uniform(0, 0.03))  # spreads the edits over the faults

        applied_faults, _ = await asyncio.gather(
            asyncio.gather(*faults), random_ops(rng, actors, 300, pace=pace)
        )
        assert all(len(f) == 50 for f in applied_faults)
        kinds = collections.Counter(kind for f in applied_faults for kind, _ in f)
        assert set(kinds) == {"cut", "blackhole", "delay", "html", "refuse"}
        for p in proxies:
            p.set_mode("pass")
        for c in actors:
            c.engine.network_changed()  # as on "network up": retry now
            await c.wait_synced(60)
        await assert_converged(live_server, actors)
    finally:
        for p in proxies:
            p.stop()
