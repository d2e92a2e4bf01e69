"""Leadership API, fencing epochs, the state handshake and gap detection (buses in-process)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from core.bus import BroadcastChannel, InvalidStateError, LocalBus
from core.bus import _hub as hub_module
from tests.support.bus import Buses, fence, listen
from tests.support.waiting import wait_until


async def test_first_leads_others_follow(buses: Buses) -> None:
    a = await buses.open()
    changes: list[tuple[int, str]] = []
    a.leader_changed.connect(lambda e, m: changes.append((e, m)))
    joined: list[list[str]] = []
    a.members_changed.connect(joined.append)
    b, c = await buses.open(), await buses.open()
    assert a.cross_process and a.is_leader and not b.is_leader and not c.is_leader
    assert a.epoch == b.epoch == c.epoch >= 1
    assert b.leader_id == c.leader_id == a.member_id == a.leader_id
    await wait_until(lambda: len(b.members()) == 3, "b sees three members", timeout=5)
    assert a.members() == b.members() == c.members() == [a.member_id, b.member_id, c.member_id]
    await wait_until(lambda: len(joined) == 2, "two members_changed events", timeout=5)
    assert joined[-1] == a.members() and changes == []  # a's own election preceded the listener


async def test_step_down_hands_over_and_messages_keep_flowing(buses: Buses) -> None:
    a, b, c = await buses.open(), await buses.open(), await buses.open()
    seen: dict[str, list[tuple[int, str]]] = {}
    for bus in (a, b, c):
        bus.leader_changed.connect(
            lambda e, m, k=bus.member_id: seen.setdefault(k, []).append((e, m))
        )
    old = a.epoch
    await a.step_down()
    assert not a.is_leader and b.is_leader != c.is_leader
    new = b if b.is_leader else c
    assert new.epoch == old + 1
    await wait_until(
        lambda: a.epoch == new.epoch and a.leader_id == new.member_id,
        "a follows the new leader",
        timeout=5,
    )
    await wait_until(
        lambda: all(seen.get(x.member_id) for x in (a, b, c)),
        "every member sees the new leader",
        timeout=5,
    )
    assert {tuple(v[-1]) for v in seen.values()} == {(old + 1, new.member_id)}
    ca, cb, cc = (BroadcastChannel("x", bus=bus) for bus in (a, b, c))
    ra, rb, rc = listen(ca), listen(cb), listen(cc)
    await fence(ca, rb, rc)
    await fence(cb, ra, rc)


async def test_step_down_alone_is_a_no_op(buses: Buses) -> None:
    a = await buses.open()
    epoch = a.epoch
    await a.step_down()
    assert a.is_leader and a.epoch == epoch


async def test_force_leader(buses: Buses) -> None:
    a, b, c = await buses.open(), await buses.open(), await buses.open()
    assert await a.force_leader()  # already leads
    epoch = a.epoch
    assert await c.force_leader()
    assert c.is_leader and not a.is_leader and not b.is_leader and c.epoch == epoch + 1
    await wait_until(
        lambda: a.leader_id == b.leader_id == c.member_id, "a and b follow c", timeout=5
    )
    assert a.epoch == b.epoch == epoch + 1
    rb = listen(BroadcastChannel("x", bus=b))
    await fence(BroadcastChannel("x", bus=a), rb)


async def test_leader_close_follower_takes_over_without_loss(buses: Buses) -> None:
    a, b, c = await buses.open(), await buses.open(), await buses.open()
    cb, cc = BroadcastChannel("x", bus=b), BroadcastChannel("x", bus=c)
    rc = listen(cc)
    closing = asyncio.create_task(a.close())
    for i in range(300):  # posted while the hub goes away and another is elected
        cb.post_message(i)
        if i % 10 == 0:
            await asyncio.sleep(0.001)
    await closing
    await rc.wait(300, timeout=10)
    await wait_until(lambda: b.is_leader or c.is_leader, "b or c to lead", timeout=5)
    await fence(cb, rc)
    assert rc.data == [*range(300), "__fence__"]


async def test_epochs_persist_and_grow(buses: Buses) -> None:
    a = await buses.open()
    first = a.epoch
    await a.close()
    b = await buses.open()
    assert b.epoch == first + 1
    assert b.paths is not None and b.paths.epoch.read_text().strip() == str(b.epoch)


async def test_state_handshake(buses: Buses) -> None:
    a, b = await buses.open(), await buses.open()
    ca, cb = BroadcastChannel("prefs", bus=a), BroadcastChannel("prefs", bus=b)
    state = {"theme": "light", "n": 0}

    def apply(ev) -> None:  # type: ignore[no-untyped-def]
        state.update(ev.data)

    ca.on_message = apply
    a.set_state_provider("prefs", lambda: dict(state))
    for i in range(1, 51):
        cb.post_message({"n": i})
    rb = listen(cb)
    state.update({"theme": "dark"})  # a poster applies its own change (it gets no echo)
    ca.post_message({"theme": "dark"})
    snapshot, seq = await b.request_state("prefs", timeout=5)  # type: ignore[misc]
    assert snapshot == {"theme": "dark", "n": 50}
    assert seq == a.position.seq  # the leader answered at its current position
    await rb.wait(1)
    assert rb.events[0].seq is not None and rb.events[0].seq <= seq  # already delivered
    # Providers: none -> None; failing -> None; async works; a follower can provide too.
    assert await b.request_state("unknown", timeout=0.5) is None
    a.set_state_provider("broken", lambda: 1 / 0)
    assert await b.request_state("broken", timeout=2) is None

    async def slow() -> list[int]:
        await asyncio.sleep(0.01)
        return [1, 2, 3]

    b.set_state_provider("async", slow)
    await wait_until(
        lambda: any("async" in m.providers for m in a.member_info),
        "a sees b's async provider",
        timeout=5,
    )
    assert await a.request_state("async", timeout=2) == ([1, 2, 3], a.position.seq)
    a.set_state_provider("hang", lambda: asyncio.get_running_loop().create_future())
    assert await b.request_state("hang", timeout=0.3) is None
    a.set_state_provider("prefs", None)
    await wait_until(
        lambda: all("prefs" not in m.providers for m in b.member_info),
        "b sees prefs withdrawn",
        timeout=5,
    )
    assert await b.request_state("prefs", timeout=0.5) is None
    await b.close()
    with pytest.raises(InvalidStateError):
        await b.request_state("prefs")


async def test_reconnect_replays_missed_messages_without_gap(buses: Buses) -> None:
    a, b = await buses.open(), await buses.open()
    ca, cb = BroadcastChannel("x", bus=a), BroadcastChannel("x", bus=b)
    rb = listen(cb)
    gaps: list[tuple[int, int]] = []
    b.gap.connect(lambda e, s: gaps.append((e, s)))
    ca.post_message(0)
    await rb.wait(1)
    session = b._session
    assert session is not None and session.link is not None
    session.link.abort()  # the connection drops; messages posted meanwhile are replayed
    for i in range(1, 51):
        ca.post_message(i)
    await rb.wait(51)
    await fence(ca, rb)
    assert rb.data == [*range(51), "__fence__"]
    assert gaps == []


async def test_gap_when_the_replay_buffer_was_exceeded(
    buses: Buses, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub_module, "RING_FRAMES", 5)
    a, b = await buses.open(), await buses.open()
    ca, cb = BroadcastChannel("x", bus=a), BroadcastChannel("x", bus=b)
    rb = listen(cb)
    gaps: list[tuple[int, int]] = []
    b.gap.connect(lambda e, s: gaps.append((e, s)))
    ca.post_message(0)
    await rb.wait(1)
    session = b._session
    assert session is not None and session.link is not None
    session.link.abort()
    for i in range(1, 51):
        ca.post_message(i)
    await wait_until(lambda: bool(gaps), "a gap reported", timeout=5)
    await fence(ca, rb)
    assert gaps[0][0] == a.epoch and gaps[0][1] > 2
    assert rb.data[0] == 0 and rb.data[-6:] == [46, 47, 48, 49, 50, "__fence__"]


async def test_posts_while_disconnected_are_queued_and_delivered_once(buses: Buses) -> None:
    _a, b, c = await buses.open(), await buses.open(), await buses.open()
    cb, cc = BroadcastChannel("x", bus=b), BroadcastChannel("x", bus=c)
    rc = listen(cc)
    session = b._session
    assert session is not None and session.link is not None
    session.link.abort()
    for i in range(100):
        cb.post_message(i)
    await rc.wait(100)
    await fence(cb, rc)
    assert rc.data == [*range(100), "__fence__"]
    assert not session.outbox or await _drained(b)


async def _drained(bus: LocalBus) -> bool:
    session = bus._session
    assert session is not None
    await wait_until(lambda: not session.outbox, "the outbox to drain", timeout=5)
    return True


async def test_outbox_is_bounded_and_receivers_see_the_hole_as_a_gap(
    buses: Buses, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from core.bus import _session as session_module

    monkeypatch.setattr(session_module, "MAX_OUTBOX", 5)
    _a, b, c = await buses.open(), await buses.open(), await buses.open()
    cb, cc = BroadcastChannel("x", bus=b), BroadcastChannel("x", bus=c)
    rc = listen(cc)
    gaps: list[tuple[int, int]] = []
    c.gap.connect(lambda e, s: gaps.append((e, s)))
    cb.post_message("before")
    await rc.wait(1)
    session = b._session
    assert session is not None and session.link is not None
    transport = session.transport
    real_connect = transport.connect

    async def unreachable(factory):  # type: ignore[no-untyped-def]
        raise ConnectionRefusedError

    monkeypatch.setattr(transport, "connect", unreachable)
    session.link.abort()
    await wait_until(lambda: not session.connected, "the session to disconnect", timeout=5)
    for i in range(20):
        cb.post_message(i)
    assert len(session.outbox) == 5
    assert caplog.text.count("outbox full") == 1
    monkeypatch.setattr(transport, "connect", real_connect)
    await rc.wait(6)
    assert rc.data == ["before", 15, 16, 17, 18, 19]
    await wait_until(lambda: bool(gaps), "a gap reported", timeout=5)


async def test_leader_re_elects_when_its_files_vanish(
    buses: Buses, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.bus import _session as session_module

    monkeypatch.setattr(session_module, "WATCH_S", 0.05)
    a, b = await buses.open(), await buses.open()
    assert a.paths is not None
    epoch = a.epoch
    for path in (a.paths.lock, a.paths.epoch, Path(a.paths.address)):  # a tmp cleaner strikes
        path.unlink()
    await wait_until(
        lambda: a.epoch > epoch and b.epoch == a.epoch and (a.is_leader or b.is_leader),
        "a new epoch after the files vanished",
        timeout=5,
    )
    leader = a if a.is_leader else b
    assert leader.paths is not None and leader.paths.lock.exists()
    rb = listen(BroadcastChannel("x", bus=b))
    await fence(BroadcastChannel("x", bus=a), rb)
