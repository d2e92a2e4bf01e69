"""After a suspend or a network change the stream may be a dead socket that still looks live:
the engine notices the lost time and reconnects at once instead of waiting out the timeout."""

from __future__ import annotations

import asyncio
import time

from core.engine import EngineConfig
from core.wake import watch_for_sleep
from tests.support.faultproxy import FaultProxy
from tests.support.live_server import LiveServer, add_users
from tests.support.waiting import wait_until


async def test_a_jump_of_the_suspend_counting_clock_is_reported_once() -> None:
    asleep = [0.0]
    woke: list[float] = []
    ticks = [0]

    def boot_clock() -> float:
        ticks[0] += 1
        return time.monotonic() + asleep[0]

    task = asyncio.create_task(
        watch_for_sleep(
            woke.append, tick_s=0.01, min_gap_s=5.0, clocks=(time.monotonic, boot_clock)
        )
    )
    try:
        await wait_until(lambda: ticks[0] >= 20, what="ticks")
        assert woke == []  # ordinary ticks are not a sleep
        asleep[0] = 3600.0  # the machine was suspended for an hour
        await wait_until(lambda: woke, what="the wake")
        seen = ticks[0]
        await wait_until(lambda: ticks[0] >= seen + 20, what="more ticks")
        assert len(woke) == 1 and 3590 < woke[0] < 3601
    finally:
        task.cancel()


async def test_a_stalled_loop_counts_as_lost_time() -> None:
    woke: list[float] = []
    task = asyncio.create_task(watch_for_sleep(woke.append, tick_s=0.01, min_gap_s=0.2))
    try:
        await asyncio.sleep(0.05)
        time.sleep(0.4)  # noqa: ASYNC251 - the process stopped (SIGSTOP, debugger, swap)
        await wait_until(lambda: woke, what="the wake")
        assert 0.2 <= woke[0] < 1.0
    finally:
        task.cancel()


async def test_reconnect_now_replaces_a_dead_stream_at_once(tmp_path, clients) -> None:
    """A black-holed stream looks live for 3 heartbeats (15 s here); after a wake or a
    network change the client reconnects and has what it missed in well under that."""
    data = tmp_path / "srv"
    data.mkdir()
    add_users(data)
    server = LiveServer(data, heartbeat_s=5.0)
    proxy = FaultProxy(upstream=("127.0.0.1", server.thread.port)).start()
    slow_wake = EngineConfig(
        backoff_base_s=0.05, backoff_cap_s=1.0, poll_after_s=30.0, wake_tick_s=60.0
    )  # only the explicit call below reconnects
    try:
        alice = await clients(proxy.url, "alice", "laptop", engine=slow_wake, heartbeat_s=5.0)
        bob = await clients(server.url, "bob", "phone", heartbeat_s=5.0)
        conv = await bob.create_conversation("after the lid opens", ["alice"])
        await wait_until(lambda: alice.conversation(conv.id), what="alice sees it")
        assert alice.status.state == "live"
        proxy.set_mode("blackhole")  # the open stream is now a dead socket ...
        proxy.set_mode("pass")  # ... while new connections work again
        sent = await bob.send_message(conv.id, "missed while asleep")
        await bob.wait_synced(10)
        assert alice.status.state == "live"  # what the dead stream would keep saying
        assert [m.id for m in alice.messages(conv.id)] == []
        t0 = time.monotonic()
        alice.network_changed()  # what a wake or a network change does
        await wait_until(
            lambda: [m.id for m in alice.messages(conv.id)] == [sent.id],
            timeout=10,
            what="the missed message",
        )
        await wait_until(lambda: alice.status.state == "live", what="live again")
        assert time.monotonic() - t0 < 5.0  # the read timeout would have taken 15 s
    finally:
        proxy.stop()
        server.stop()
