"""The status never lies: "Offline — can't reach <host>" whenever neither the stream nor a poll
reaches the server, "Polling every N s" only while polls succeed, "Sign-in required" only when
the server refused a fresh token, and queued actions go out as soon as the server is back."""

from __future__ import annotations

import time
from pathlib import Path

from core.engine import EngineConfig
from tests.support.faultproxy import FaultProxy
from tests.support.live_server import FAST, LiveServer, add_users
from tests.support.waiting import wait_until


def record(client) -> list[str]:  # type: ignore[no-untyped-def]
    states: list[str] = []
    client.events.status_changed.connect(lambda s: states.append(s.state))
    return states


async def test_stopped_server_is_unreachable_then_live(live_server, clients) -> None:
    a = await clients(live_server.url, "alice", "d1")
    states = record(a)
    await wait_until(lambda: a.status.state == "live", what="live")
    live_server.stop()
    await wait_until(lambda: a.status.state == "unreachable", what="unreachable")
    host = live_server.url.removeprefix("http://")
    assert a.status.detail.startswith(f"Offline — can't reach {host} · retrying in")
    assert a.status.last_error and a.status.target == host
    # Once nothing gets through it never claims to poll (a poll may still have been answered
    # while the server was shutting down, before that).
    assert "polling" not in states[states.index("unreachable") :]
    live_server.restart()
    await wait_until(lambda: a.status.state == "live", timeout=15, what="live again")
    assert a.status.last_error is None and "sign_in_required" not in states


async def test_black_holed_server_is_unreachable_not_polling(live_server, clients) -> None:
    proxy = FaultProxy(upstream=("127.0.0.1", live_server.thread.port)).start()
    try:
        a = await clients(proxy.url, "alice", "d1", request_timeout_s=0.5)
        states = record(a)
        await wait_until(lambda: a.status.state == "live", what="live")
        proxy.set_mode("blackhole")  # the stream goes silent; new requests get no answer
        await wait_until(lambda: a.status.state == "unreachable", timeout=15, what="unreachable")
        assert "polling" not in states  # every poll timed out
        proxy.set_mode("pass")
        proxy.cut()
        await wait_until(lambda: a.status.state == "live", timeout=15, what="live again")
        assert "sign_in_required" not in states
    finally:
        proxy.stop()


async def test_polling_shows_only_while_polls_succeed(tmp_path: Path, clients) -> None:
    data = tmp_path / "streamless"
    data.mkdir()
    add_users(data)
    server = LiveServer(data, heartbeat_s=1.0, max_streams_per_user=0)  # /events is 429
    try:
        a = await clients(server.url, "alice", "d1")
        states = record(a)
        await wait_until(lambda: a.status.state == "polling", timeout=15, what="polling")
        assert a.status.detail.startswith("Polling every")
        server.stop()
        await wait_until(lambda: a.status.state == "unreachable", timeout=15, what="unreachable")
        server.restart()
        await wait_until(lambda: states[-1] == "polling", timeout=15, what="polling again")
    finally:
        server.stop()


async def test_no_sign_in_asked_while_the_server_cannot_be_reached(live_server, clients) -> None:
    a = await clients(live_server.url, "alice", "d1")
    states = record(a)
    await wait_until(lambda: a.status.state == "live", what="live")
    live_server.stop()
    await wait_until(lambda: a.status.state == "unreachable", what="unreachable")
    assert a.engine is not None
    a.engine.tokens.access_token = None  # expired meanwhile: the refresh cannot reach the server
    a.network_changed()
    await wait_until(lambda: len(states) >= 6, timeout=15, what="a few more attempts")
    assert "sign_in_required" not in states and a.status.state == "unreachable"
    live_server.restart()
    await wait_until(lambda: a.status.state == "live", timeout=15, what="live again")


async def test_the_embedded_server_restarting_is_not_a_network_problem(
    live_server, clients
) -> None:
    local = EngineConfig(**{**FAST.__dict__, "local_server": True})
    a = await clients(live_server.url, "alice", "d1", engine=local)
    await wait_until(lambda: a.status.state == "live", what="live")
    live_server.stop()
    await wait_until(lambda: a.status.state == "unreachable", what="unreachable")
    assert a.status.local_server and a.status.detail.startswith("Local server restarting")
    live_server.restart()
    await wait_until(lambda: a.status.state == "live", timeout=15, what="live again")


async def test_queued_actions_go_out_as_soon_as_the_stream_is_back(live_server, clients) -> None:
    # The outbox's own backoff is long here (up to 20 s); reaching the server must cut it short.
    slow_outbox = EngineConfig(
        **{**FAST.__dict__, "backoff_cap_s": 20.0, "outbox_backoff_base_s": 20.0}
    )
    a = await clients(live_server.url, "alice", "d1", engine=slow_outbox)
    conv = await a.create_conversation("c")
    await a.wait_synced(10)
    live_server.stop()
    await wait_until(lambda: a.status.state == "unreachable", what="unreachable")
    await a.send_message(conv.id, "queued while the server was down")
    await wait_until(
        lambda: any(e.attempts >= 1 for e in a.store.outbox()), what="a failed attempt"
    )
    live_server.restart()
    await wait_until(lambda: a.status.state == "live", timeout=30, what="live again")
    live_at = time.monotonic()
    await a.wait_synced(5)
    drained_s = time.monotonic() - live_at
    assert drained_s < 1.0, f"the outbox took {drained_s:.2f} s after the stream was live"
    assert [m.body for m in a.messages(conv.id)] == ["queued while the server was down"]


async def test_a_server_answering_errors_is_not_offline_nor_polling(live_server, clients) -> None:
    proxy = FaultProxy(upstream=("127.0.0.1", live_server.thread.port)).start()
    try:
        a = await clients(proxy.url, "alice", "d1")
        states = record(a)
        await wait_until(lambda: a.status.state == "live", what="live")
        proxy.set_mode("http_error", status=503)
        proxy.cut()
        await wait_until(
            lambda: a.status.detail.startswith("Server error"), timeout=15, what="server error"
        )
        # The cut itself may fail a request at the network level (briefly "unreachable"); from
        # the first answered error on, every further attempt says "Server error".
        seen = len(states)
        await wait_until(lambda: len(states) >= seen + 3, timeout=15, what="more attempts")
        assert "unreachable" not in states[seen:] and "polling" not in states[seen:]
        assert "503" in (a.status.last_error or "")
        proxy.set_mode("pass")
        await wait_until(lambda: a.status.state == "live", timeout=15, what="live again")
    finally:
        proxy.stop()
