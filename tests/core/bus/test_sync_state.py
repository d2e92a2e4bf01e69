"""sync_state: preference keys kept equal across bus members, in one process and across two."""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from core.bus import BroadcastChannel, LocalBus
from core.bus import _hub as hub_module
from core.bus._sync_state import (
    LOCAL,
    REMOTE,
    Meta,
    PreferenceStore,
    SyncHandle,
    sync_state,
)
from tests.support.waiting import wait_until

# Once core.bus exports the function, the attribute core.bus.sync_state is that function.
sync_state_module = importlib.import_module("core.bus._sync_state")
CHANNEL = "sync-state:prefs"


class Wire:
    """A raw listener on the sync channel: records every frame that crosses the bus."""

    def __init__(self, bus: LocalBus) -> None:
        self.frames: list[Any] = []
        self.channel = BroadcastChannel(CHANNEL, bus=bus)
        self.channel.add_listener("message", lambda event: self.frames.append(event.data))

    def updates(self) -> list[dict[str, Any]]:
        return [f for f in self.frames if isinstance(f, dict) and f.get("type") == "update"]

    def values(self, key: str) -> list[Any]:
        return [f["entries"][key]["value"] for f in self.updates() if key in f["entries"]]

    def text(self) -> str:
        return json.dumps(self.frames)

    async def settle(self, bus: LocalBus) -> None:
        """Return once everything ``bus`` posted so far has reached us (FIFO per sender)."""
        marker = {"type": "marker", "id": uuid.uuid4().hex}
        with BroadcastChannel(CHANNEL, bus=bus) as channel:
            channel.post_message(marker)
            await wait_until(
                lambda: marker in self.frames, "the marker to cross the bus", timeout=5
            )


Member = tuple[LocalBus, PreferenceStore, SyncHandle]


@pytest.fixture
async def group(open_bus):
    """``await group(n, initial, **options)``: n members, each with its own bus, store, handle."""
    handles: list[SyncHandle] = []

    async def factory(n: int, initial: dict | None = None, **options: Any) -> list[Member]:
        members = []
        for _ in range(n):
            bus, store = await open_bus(), PreferenceStore(initial)
            handles.append(sync_state(store, "prefs", bus=bus, **options))
            members.append((bus, store, handles[-1]))
        for handle in handles:
            async with asyncio.timeout(5):
                await handle.wait_synced()
        return members

    yield factory
    for handle in handles:
        handle.close()


def converged(stores: list[PreferenceStore], key: str) -> Callable[[], bool]:
    def check() -> bool:
        values = {json.dumps(s.get(key), sort_keys=True) for s in stores}
        return len(values) == 1 and stores[0].get(key) is not None

    return check


def freeze_wall_clock(monkeypatch: pytest.MonkeyPatch, members: list[Member]) -> None:
    """Every next write gets clock 1: versions then differ only by writer."""
    monkeypatch.setattr(sync_state_module, "_wall_ms", lambda: 1)
    for _, _, handle in members:
        handle._clock = 0


# -- the store and the pacing (no bus) -------------------------------------------------------


def test_preference_store_notifies_changes_with_origin() -> None:
    store = PreferenceStore({"theme": "light"})
    seen: list[tuple[dict, str]] = []
    unsubscribe = store.subscribe(lambda changed, origin: seen.append((changed, origin)))
    store.set("theme", "light")  # unchanged: no notification
    store.update({"theme": "dark", "font_size": 12})
    store.set("font_size", 13, origin=REMOTE)
    store.set("font_size", True)  # True == 1 in Python, but it is another JSON value
    assert seen == [
        ({"theme": "dark", "font_size": 12}, LOCAL),
        ({"font_size": 13}, REMOTE),
        ({"font_size": True}, LOCAL),
    ]
    store.snapshot()["theme"] = "mutated"
    store.get("theme")  # copies: the store cannot be changed behind its back
    assert store.snapshot() == {"theme": "dark", "font_size": True}
    with pytest.raises(TypeError):
        store.set("bad", {1, 2})  # JSON values only
    unsubscribe()
    store.set("theme", "blue")
    assert len(seen) == 3


# -- members on a real bus (one process) -----------------------------------------------------


async def test_invalid_arguments_are_rejected(open_bus) -> None:
    bus = await open_bus()
    with pytest.raises(ValueError, match="conflict_strategy"):
        sync_state(PreferenceStore(), "p", bus=bus, conflict_strategy="newest")
    with pytest.raises(ValueError, match="throttle_ms"):
        sync_state(PreferenceStore(), "p", bus=bus, throttle_ms=-1)
    with pytest.raises(TypeError, match="not a str"):  # "token" would exclude t, o, k, e, n
        sync_state(PreferenceStore(), "p", bus=bus, exclude_keys="token")


async def test_local_write_reaches_every_other_member_once(group) -> None:
    remote_updates: list[dict] = []
    members = await group(3, {"theme": "light"}, on_remote_update=remote_updates.append)
    (bus_a, a, ha), (_, b, hb), (_, c, hc) = members
    origins: list[str] = []
    b.subscribe(lambda _changed, origin: origins.append(origin))
    wire = Wire(bus_a)
    a.set("theme", "dark")
    a.update({"font_size": 14, "sidebar_width": 280})
    await wait_until(
        lambda: b.snapshot() == c.snapshot() == a.snapshot(), "b and c equal a", timeout=5
    )
    await wire.settle(bus_a)
    # Writes in one loop iteration: one broadcast; the members that applied it do not echo it.
    assert [sorted(f["entries"]) for f in wire.updates()] == [
        ["font_size", "sidebar_width", "theme"]
    ]
    assert origins == [REMOTE]
    assert remote_updates == [{"theme": "dark", "font_size": 14, "sidebar_width": 280}] * 2
    assert ha.meta("theme") == hb.meta("theme") == hc.meta("theme") is not None
    assert ha.meta("theme").writer == ha.writer and ha.meta("window_x") is None


async def test_last_write_wins_converges_on_concurrent_writes(group, monkeypatch) -> None:
    members = await group(3)
    stores = [store for _, store, _ in members]
    for i, store in enumerate(stores):  # one loop iteration: nobody has seen the others yet
        store.set("theme", f"theme-{i}")
    await wait_until(converged(stores, "theme"), "the theme to converge", timeout=5)
    winner = max(handle.meta("theme") for _, _, handle in members)
    assert {handle.meta("theme") for _, _, handle in members} == {winner}
    writers = [handle.writer for _, _, handle in members]
    assert stores[0].get("theme") == f"theme-{writers.index(winner.writer)}"

    freeze_wall_clock(monkeypatch, members)  # equal clocks: the writer id breaks the tie
    for i, store in enumerate(stores):
        store.set("font_size", 10 + i)
    top = writers.index(max(writers))
    await wait_until(
        lambda: all(s.get("font_size") == 10 + top for s in stores),
        "the top writer's font size everywhere",
        timeout=5,
    )
    assert {handle.meta("font_size") for _, _, handle in members} == {Meta(1, writers[top])}


async def test_first_write_wins(group, monkeypatch) -> None:
    members = await group(3, conflict_strategy="first-write-wins")
    (bus_a, a, _), (bus_b, b, _), (_, c, _) = members
    wire = Wire(bus_a)
    a.set("theme", "dark")
    await wait_until(converged([a, b, c], "theme"), "the theme to converge", timeout=5)
    b.set("theme", "blue")  # the key has its first value: the write is undone, never sent
    assert b.get("theme") == "blue"
    await wait_until(lambda: b.get("theme") == "dark", "b's write undone", timeout=5)
    await wire.settle(bus_b)
    assert wire.values("theme") == ["dark"]

    freeze_wall_clock(monkeypatch, members)  # equal clocks: the lowest writer id is first
    for i, store in enumerate([a, b, c]):  # concurrent first writes
        store.set("font_size", 10 + i)
    writers = [handle.writer for _, _, handle in members]
    first = writers.index(min(writers))
    await wait_until(
        lambda: all(s.get("font_size") == 10 + first for s in [a, b, c]),
        "the first writer's font size everywhere",
        timeout=5,
    )
    assert {handle.meta("font_size") for _, _, handle in members} == {Meta(1, writers[first])}


async def test_merge_merges_dicts_per_sub_key(group) -> None:
    members = await group(3, conflict_strategy="merge")
    stores = [store for _, store, _ in members]
    a, b, c = stores
    a.set("layout", {"sidebar": 200, "panel": 100})
    await wait_until(
        lambda: b.get("layout") == c.get("layout") == a.get("layout"),
        "b and c get a's layout",
        timeout=5,
    )
    a.set("layout", {"sidebar": 250, "panel": 100})  # concurrent edits of different sub-keys
    b.set("layout", {"sidebar": 200, "panel": 120, "toolbar": True})
    merged = {"sidebar": 250, "panel": 120, "toolbar": True}
    await wait_until(
        lambda: all(s.get("layout") == merged for s in stores),
        "the merged layout everywhere",
        timeout=5,
    )
    c.set("layout", {"sidebar": 250, "panel": 120})  # a removed sub-key stays removed
    await wait_until(
        lambda: all(s.get("layout") == {"sidebar": 250, "panel": 120} for s in stores),
        "the removed sub-key gone everywhere",
        timeout=5,
    )
    for i, store in enumerate(stores):  # not dicts: last write wins
        store.set("theme", f"t{i}")
    await wait_until(converged(stores, "theme"), "the theme to converge", timeout=5)
    winner = max(handle.meta("theme") for _, _, handle in members)
    assert {handle.meta("theme") for _, _, handle in members} == {winner}


async def test_custom_resolver(group, monkeypatch) -> None:
    calls: list[tuple] = []

    def larger(key: str, local: Any, remote: Any, local_meta: Meta, remote_meta: Meta) -> Any:
        calls.append((key, local, remote, local_meta, remote_meta))
        return max(local, remote)

    members = await group(2, conflict_strategy=larger)
    freeze_wall_clock(monkeypatch, members)
    # The member whose writer id wins ties writes the smaller value: LWW would keep 11.
    low, high = sorted(members, key=lambda m: m[2].writer, reverse=True)
    low[1].set("font_size", 11)
    high[1].set("font_size", 16)
    await wait_until(
        lambda: low[1].get("font_size") == high[1].get("font_size") == 16,
        "the resolver's larger value on both",
        timeout=5,
    )
    assert ("font_size", 11, 16, Meta(1, low[2].writer), Meta(1, high[2].writer)) in calls


async def test_excluded_and_unlisted_keys_never_go_on_the_wire(group) -> None:
    members = await group(2, sync_keys=["theme", "token"], exclude_keys=["token"])
    (bus_a, a, _), (bus_b, b, _) = members
    wire = Wire(bus_b)
    a.update({"theme": "dark", "token": "s3cret-token", "window_x": 17})
    await wait_until(lambda: b.get("theme") == "dark", "b gets the theme", timeout=5)
    await wire.settle(bus_a)
    # Nor in the state handshake that late joiners use...
    snapshot, _seq = await bus_b.request_state(CHANNEL)
    assert "dark" in json.dumps(snapshot) and "s3cret-token" not in json.dumps(snapshot)
    # ...and a forged frame carrying an excluded key is not accepted.
    forged = {"value": "evil", "clock": 2**62, "writer": "x"}
    wire.channel.post_message({"type": "update", "entries": {"token": forged, "theme": forged}})
    await wait_until(
        lambda: a.get("theme") == b.get("theme") == "evil", "the forged theme on both", timeout=5
    )
    assert "s3cret-token" not in wire.text() and "window_x" not in wire.text()
    assert b.get("token") is None and b.get("window_x") is None
    assert a.get("token") == "s3cret-token"


async def test_should_sync_filters_both_ways(group) -> None:
    def small(key: str, value: Any) -> bool:
        return not (key == "font_size" and value > 40)

    (bus_a, a, _), (bus_b, b, _) = await group(2, should_sync=small)
    wire = Wire(bus_a)
    a.set("font_size", 72)
    a.set("theme", "dark")
    await wait_until(lambda: b.get("theme") == "dark", "b gets the theme", timeout=5)
    assert b.get("font_size") is None and wire.values("font_size") == []
    forged = {"value": 99, "clock": 2**62, "writer": "x"}  # would win, but is filtered out
    with BroadcastChannel(CHANNEL, bus=bus_b) as forger:
        forger.post_message({"type": "update", "entries": {"font_size": forged}})
    await wire.settle(bus_b)
    assert a.get("font_size") == 72 and b.get("font_size") is None
    a.set("font_size", 20)
    await wait_until(lambda: b.get("font_size") == 20, "b gets the font size", timeout=5)
    assert a.get("font_size") == 20 and wire.values("font_size") == [99, 20]  # forged, a's


async def test_on_remote_update_runs_after_the_store_changed(group) -> None:
    seen: list[tuple[dict, dict]] = []
    members = await group(2, {"theme": "light"})
    (_, a, _), (bus_b, b, hb) = members
    hb.close()

    def on_remote(changed: dict) -> None:
        seen.append((changed, b.snapshot()))

    async with sync_state(b, "prefs", bus=bus_b, on_remote_update=on_remote):
        b.set("font_size", 12)  # local writes do not call it
        a.set("theme", "dark")
        await wait_until(lambda: bool(seen), "the first remote update", timeout=5)
        a.set("theme", "dark")  # unchanged: nothing to report
        a.set("sidebar_width", 250)
        await wait_until(lambda: len(seen) == 2, "the second remote update", timeout=5)
    assert seen == [
        ({"theme": "dark"}, {"theme": "dark", "font_size": 12}),
        ({"sidebar_width": 250}, {"theme": "dark", "font_size": 12, "sidebar_width": 250}),
    ]


async def test_late_joiner_gets_current_state(group, open_bus) -> None:
    (_, a, _), (_, b, _) = await group(2, {"theme": "light"})
    a.set("theme", "dark")
    b.set("layout", {"sidebar": 300})
    await wait_until(lambda: a.snapshot() == b.snapshot(), "a and b equal", timeout=5)
    late = PreferenceStore({"theme": "light", "font_size": 11})  # local defaults yield
    async with sync_state(late, "prefs", bus=await open_bus()) as handle:
        async with asyncio.timeout(5):
            assert await handle.wait_synced() is True
        assert late.snapshot() == {"theme": "dark", "font_size": 11, "layout": {"sidebar": 300}}
        a.set("theme", "blue")  # and it is a member like the others from then on
        await wait_until(
            lambda: late.get("theme") == "blue", "the late joiner gets the theme", timeout=5
        )


async def test_first_member_has_nothing_to_fetch(open_bus) -> None:
    async with sync_state(PreferenceStore(), "alone", bus=await open_bus()) as handle:
        async with asyncio.timeout(1):  # no provider: known at once, no timeout to sit out
            assert await handle.wait_synced() is False


async def test_a_bus_gap_triggers_a_new_handshake(group, monkeypatch) -> None:
    """b really misses an update: its connection is down while a posts it and then more than
    the hub's replay ring holds. On reconnecting the bus reports a gap, and b fetches the state
    again (the update itself never reaches b's channel)."""
    monkeypatch.setattr(hub_module, "RING_FRAMES", 5)
    (bus_a, a, _), (bus_b, b, _) = await group(2)
    assert bus_a.is_leader and not bus_b.is_leader
    sent, received = Wire(bus_a), Wire(bus_b)
    gaps: list[tuple[int, int]] = []
    bus_b.gap.connect(lambda epoch, seq: gaps.append((epoch, seq)))
    # The fault: b's connection drops and the hub stays unreachable for it until restored.
    session = bus_b._session
    assert session is not None and session.link is not None
    real_connect = session.transport.connect

    async def unreachable(factory: Any) -> Any:
        raise ConnectionRefusedError

    monkeypatch.setattr(session.transport, "connect", unreachable)
    session.link.abort()
    await wait_until(lambda: not session.connected, "b's session to disconnect", timeout=5)
    a.set("theme", "dark")
    await wait_until(
        lambda: sent.values("theme") == ["dark"], "a's update on the wire", timeout=5
    )  # posted (a leads: in the hub)
    with BroadcastChannel("filler", bus=bus_a) as filler:
        for i in range(10):  # pushes the update out of the 5-frame replay ring
            filler.post_message(i)
    assert b.get("theme") is None
    monkeypatch.setattr(session.transport, "connect", real_connect)
    await wait_until(lambda: b.get("theme") == "dark", "b gets the theme after the gap", timeout=5)
    assert gaps and gaps[0][0] == bus_a.epoch
    assert received.values("theme") == []  # not replayed: b got it from the new handshake


async def test_throttle_on_the_bus(group) -> None:
    (bus_a, a, ha), (_, b, _) = await group(2, throttle_ms=300)
    wire = Wire(bus_a)
    loop = asyncio.get_running_loop()
    a.set("font_size", 1)
    start = loop.time()
    await wait_until(lambda: len(wire.updates()) == 1, "the leading edge", timeout=5)
    for size in range(2, 12):
        a.set("font_size", size)
        await asyncio.sleep(0)
    await wait_until(
        lambda: len(wire.updates()) == 2, "the trailing edge", timeout=5
    )  # trailing edge, with the latest value
    assert loop.time() - start >= 0.29
    await wait_until(lambda: b.get("font_size") == 11, "b gets the last font size", timeout=5)
    ha.close()  # nothing is pending: closing sends nothing more
    await wire.settle(bus_a)
    assert wire.values("font_size") == [1, 11]


async def test_debounce_on_the_bus(group) -> None:
    (bus_a, a, ha), (_, b, _) = await group(2, debounce_ms=250)
    wire = Wire(bus_a)
    loop = asyncio.get_running_loop()
    for width in range(200, 205):
        a.set("sidebar_width", width)
        last = loop.time()
        await asyncio.sleep(0.01)
    await wait_until(lambda: b.get("sidebar_width") == 204, "b gets the last width", timeout=5)
    assert loop.time() - last >= 0.24
    ha.close()
    await wire.settle(bus_a)
    assert wire.values("sidebar_width") == [204]


async def test_close_flushes_what_is_pending_then_stops(group) -> None:
    (bus_a, a, ha), (bus_b, b, hb) = await group(2, debounce_ms=10_000)
    wire = Wire(bus_a)
    a.set("theme", "dark")
    async with ha:
        pass  # leaving the block closes the handle: the pending write goes out now
    await wait_until(lambda: b.get("theme") == "dark", "b gets the flushed theme", timeout=5)
    a.set("theme", "blue")  # a no longer sends...
    b.set("font_size", 30)
    hb.close()  # ...and no longer receives (b's pending write goes out as b closes)
    hb.close()  # idempotent
    early = sync_state(PreferenceStore(), "prefs", bus=bus_b)
    early.close()  # closed before its handshake ran: waiting for it does not hang
    async with asyncio.timeout(1):
        assert await early.wait_synced() is False
    await wire.settle(bus_b)
    assert wire.values("font_size") == [30] and a.get("font_size") is None
    assert b.get("theme") == "dark" and wire.values("theme") == ["dark"]


async def test_malformed_frames_are_dropped(group, caplog) -> None:
    (bus_a, a, _), (_, b, _) = await group(2)
    wire = Wire(bus_a)
    bad_sub = {"value": {}, "clock": 1, "writer": "w", "sub": {"a": [1]}}
    for junk in [
        "x",
        None,
        {"type": "update", "entries": "x"},
        {"type": "update", "entries": {"theme": {"value": 1}}},
        {"type": "update", "entries": {"theme": {"value": 1, "clock": True, "writer": "w"}}},
        {"type": "update", "entries": {"layout": bad_sub}},
    ]:
        wire.channel.post_message(junk)
    with caplog.at_level(logging.WARNING, logger="core.bus._sync_state"):
        await wire.settle(bus_a)
        a.set("theme", "dark")
        await wait_until(lambda: b.get("theme") == "dark", "b gets the theme", timeout=5)
    assert b.get("layout") is None and a.get("layout") is None
    assert sum("malformed" in r.message for r in caplog.records) == 12  # 6 frames x 2 members
