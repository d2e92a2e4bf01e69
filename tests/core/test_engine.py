"""The engine on a live stream: heartbeats keep it live, and it costs no poll requests."""

from __future__ import annotations

import asyncio

from core.engine import EngineConfig
from tests.support.waiting import wait_until


async def test_idle_live_stream_makes_no_poll_requests(live_server, clients) -> None:
    """A minute of a live stream with heartbeats costs zero ``changes`` requests."""
    a = await clients(live_server.url, "alice", "d1", engine=EngineConfig())  # real timings
    await wait_until(lambda: a.status.state == "live", what="live")
    latency = live_server.app.state.ctx.metrics.request_latency

    def polls() -> float:
        return sum(
            s.value
            for m in latency.collect()
            for s in m.samples
            if s.name.endswith("_count") and s.labels.get("route") == "/api/v1/changes"
        )

    before = polls()
    states: list[str] = []
    a.events.status_changed.connect(lambda s: states.append(s.state))
    await asyncio.sleep(60)  # the point of the test is the passage of a minute
    assert a.status.state == "live" and states == [], "the stream must stay live all along"
    assert polls() == before, f"{polls() - before:.0f} poll requests while live"
