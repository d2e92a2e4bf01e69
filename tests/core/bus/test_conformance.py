"""BroadcastChannel conformance, modeled on web-platform-tests webmessaging/broadcastchannel
(basics.any.js, interface.any.js), in one bus and across two buses (the socket path)."""

from __future__ import annotations

import asyncio
import math

import pytest

from core.bus import (
    BroadcastChannel,
    DataCloneError,
    InvalidStateError,
    LocalBus,
    MessageEvent,
)
from tests.support.bus import Buses, fence, listen

TOPOLOGIES = ["one-bus", "two-buses"]


@pytest.fixture(params=TOPOLOGIES)
async def pair(request: pytest.FixtureRequest, buses: Buses) -> tuple[LocalBus, LocalBus]:
    """(sender's bus, receivers' bus): the same bus, or a leader and a follower."""
    a = await buses.open()
    b = a if request.param == "one-bus" else await buses.open()
    return a, b


async def test_post_message_results_in_correct_event(pair: tuple[LocalBus, LocalBus]) -> None:
    a, b = pair
    c1 = BroadcastChannel("eventType", bus=a)
    c2 = BroadcastChannel("eventType", bus=b)
    rec = listen(c2)
    c1.post_message("hello world")
    (ev,) = await rec.wait(1)
    assert isinstance(ev, MessageEvent)
    assert (ev.type, ev.data, ev.target, ev.sender) == ("message", "hello world", c2, a.member_id)
    assert ev.seq == 1  # a leads: its hub sequenced the post
    assert c2.name == "eventType"


async def test_sender_is_excluded_other_channels_in_its_process_are_not(
    pair: tuple[LocalBus, LocalBus],
) -> None:
    a, b = pair
    c1 = BroadcastChannel("x", bus=a)
    c1b = BroadcastChannel("x", bus=a)
    c2 = BroadcastChannel("x", bus=b)
    own, sibling, remote = listen(c1), listen(c1b), listen(c2)
    c1.post_message(1)
    await fence(c1, sibling, remote)
    assert own.events == []
    assert sibling.data[0] == 1 and remote.data[0] == 1
    if a is not b:
        assert sibling.events[0].seq == remote.events[0].seq  # one hub order


async def test_messages_are_delivered_in_port_creation_order(buses: Buses) -> None:
    bus = await buses.open()
    c1, c2, c3 = (BroadcastChannel("order", bus=bus) for _ in range(3))
    events: list[tuple[BroadcastChannel, object]] = []
    done = asyncio.Event()

    def handler(ev: MessageEvent) -> None:
        events.append((ev.target, ev.data))
        if sum(d == "done" for _t, d in events) == 2:
            done.set()

    for ch in (c1, c2, c3):
        ch.on_message = handler
    c1.post_message("from c1")
    c3.post_message("from c3")
    c2.post_message("done")
    await asyncio.wait_for(done.wait(), 5)
    assert events == [
        (c2, "from c1"),
        (c3, "from c1"),
        (c1, "from c3"),
        (c2, "from c3"),
        (c1, "done"),
        (c3, "done"),
    ]


async def test_order_per_sender_across_three_channels_and_two_buses(buses: Buses) -> None:
    a, b = await buses.open(), await buses.open()
    senders = [BroadcastChannel("o", bus=bus) for bus in (a, b, a)]
    receiver = BroadcastChannel("o", bus=b)
    rec = listen(receiver)
    for i in range(200):
        for k, ch in enumerate(senders):
            ch.post_message([k, i])
    await rec.wait(600)
    for k in range(3):
        assert [d[1] for d in rec.data if d[0] == k] == list(range(200))


async def test_closed_port_gets_nothing(pair: tuple[LocalBus, LocalBus]) -> None:
    a, b = pair
    c1, c2, c3 = (BroadcastChannel("closed", bus=bus) for bus in (a, b, b))
    r2, r3 = listen(c2), listen(c3)
    c2.close()
    c1.post_message("test")
    await r3.wait(1)
    await fence(c1, r3)
    assert r2.events == []


async def test_port_closed_after_post_message_gets_nothing(
    pair: tuple[LocalBus, LocalBus],
) -> None:
    a, b = pair
    c1, c2, c3 = (BroadcastChannel("closed2", bus=bus) for bus in (a, b, b))
    r2, r3 = listen(c2), listen(c3)
    c1.post_message("test")
    c2.close()
    await fence(c1, r3)
    assert r2.events == []
    assert r3.data == ["test", "__fence__"]


async def test_closing_and_creating_channels_during_message_delivery(buses: Buses) -> None:
    bus = await buses.open()
    c1 = BroadcastChannel("create-in-onmessage", bus=bus)
    c2 = BroadcastChannel("create-in-onmessage", bus=bus)
    got: list[object] = []
    done = asyncio.Event()

    def c3_handler(ev: MessageEvent) -> None:
        got.append(("c3", ev.data))
        done.set()

    def c2_handler(ev: MessageEvent) -> None:
        got.append(("c2", ev.data))
        c2.close()
        c3 = BroadcastChannel("create-in-onmessage", bus=bus)
        c3.on_message = c3_handler
        c1.post_message("done")

    c2.on_message = c2_handler
    c1_rec = listen(c1)
    c1.post_message("first")
    c2.post_message("second")
    await asyncio.wait_for(done.wait(), 5)
    await c1_rec.wait(1)
    assert got == [("c2", "first"), ("c3", "done")]  # c3 was created after "second"
    assert c1_rec.data == ["second"]


async def test_closing_in_onmessage_prevents_already_queued_deliveries(buses: Buses) -> None:
    bus = await buses.open()
    c1, c2, c3 = (BroadcastChannel("close-in-onmessage", bus=bus) for _ in range(3))
    events: list[str] = []
    c1.on_message = lambda e: events.append(f"c1: {e.data}")
    c2.on_message = lambda e: events.append(f"c2: {e.data}")
    c3.on_message = lambda e: events.append(f"c3: {e.data}")
    c2.add_listener("message", lambda e: c2.close())
    r3 = listen(c3)
    c1.post_message("first")
    c1.post_message("done")
    await r3.wait(2)
    assert events == ["c2: first", "c3: first", "c3: done"]


async def test_post_after_close_raises_invalid_state_even_with_uncloneable_data(
    buses: Buses,
) -> None:
    bus = await buses.open()
    c = BroadcastChannel("", bus=bus)
    c.post_message(None)
    c.close()
    c.close()  # idempotent
    with pytest.raises(InvalidStateError):
        c.post_message("")
    with pytest.raises(InvalidStateError):
        c.post_message({1, 2})
    with pytest.raises(TypeError):
        c.post_message()  # type: ignore[call-arg]


async def test_channels_of_a_closed_bus_are_closed(buses: Buses) -> None:
    bus = await buses.open()
    c = BroadcastChannel("x", bus=bus)
    await bus.close()
    assert c.closed
    with pytest.raises(InvalidStateError):
        c.post_message(1)
    with pytest.raises(InvalidStateError):
        BroadcastChannel("x", bus=bus)


async def test_late_joiner_does_not_get_earlier_posts(pair: tuple[LocalBus, LocalBus]) -> None:
    a, b = pair
    c1 = BroadcastChannel("late", bus=a)
    early = BroadcastChannel("late", bus=b)
    r_early = listen(early)
    c1.post_message("before")
    late = BroadcastChannel("late", bus=b)
    r_late = listen(late)
    c1.post_message("after")
    await r_early.wait(2)
    await fence(c1, r_late)
    assert r_early.data[:2] == ["before", "after"]
    assert r_late.data == ["after", "__fence__"]


@pytest.mark.parametrize(
    "bad",
    [
        {1, 2},
        (1, 2),
        math.nan,
        math.inf,
        b"bytes",
        object(),
        {1: "int key"},
        [1, [math.nan]],
        "x" * (1 << 20),
    ],
    ids=["set", "tuple", "nan", "inf", "bytes", "object", "int-key", "nested-nan", "too-large"],
)
async def test_uncloneable_data_raises_data_clone_error(
    pair: tuple[LocalBus, LocalBus], bad: object
) -> None:
    a, b = pair
    c1, c2 = BroadcastChannel("clone", bus=a), BroadcastChannel("clone", bus=b)
    rec = listen(c2)
    with pytest.raises(DataCloneError):
        c1.post_message(bad)
    await fence(c1, rec)
    assert rec.data == ["__fence__"]


async def test_huge_channel_name_counts_towards_the_size_limit(buses: Buses) -> None:
    bus = await buses.open()
    ch = BroadcastChannel("n" * (1 << 20), bus=bus)
    with pytest.raises(DataCloneError):
        ch.post_message(1)


async def test_recursive_data_raises_data_clone_error(buses: Buses) -> None:
    bus = await buses.open()
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(DataCloneError):
        BroadcastChannel("clone", bus=bus).post_message(loop)


async def test_each_receiver_gets_its_own_copy(pair: tuple[LocalBus, LocalBus]) -> None:
    a, b = pair
    c1 = BroadcastChannel("copy", bus=a)
    receivers = [BroadcastChannel("copy", bus=bus) for bus in (a, a, b, b)]
    recs = [listen(ch) for ch in receivers]
    for rec in recs:  # every receiver mutates what it got, first come first served
        rec_events = rec.events
        receivers[recs.index(rec)].add_listener(
            "message", lambda ev: ev.data["items"].append("mutated")
        )
        del rec_events
    data = {"items": [1, 2], "n": 1.5, "ok": True, "none": None}
    c1.post_message(data)
    data["items"].append("sender changed it after posting")
    for rec in recs:
        await rec.wait(1)
    for rec in recs:
        assert rec.data[0] == {"items": [1, 2, "mutated"], "n": 1.5, "ok": True, "none": None}
    assert len({id(rec.data[0]) for rec in recs}) == len(recs)


async def test_delivery_is_asynchronous(buses: Buses) -> None:
    bus = await buses.open()
    c1, c2 = BroadcastChannel("async", bus=bus), BroadcastChannel("async", bus=bus)
    rec = listen(c2)
    c1.post_message(1)
    assert rec.events == []
    await rec.wait(1)


async def test_listeners_handlers_and_unsubscribe(buses: Buses) -> None:
    bus = await buses.open()
    c1, c2 = BroadcastChannel(123, bus=bus), BroadcastChannel("123", bus=bus)  # type: ignore[arg-type]
    assert c1.name == "123"
    calls: list[str] = []
    off = c2.add_listener("message", lambda e: calls.append("listener"))
    c2.on_message = lambda e: calls.append("handler1")
    c2.add_listener("message", lambda e: calls.append("after"))
    c2.on_message = lambda e: calls.append("handler2")  # keeps its position
    rec = listen(c2)
    c1.post_message(1)
    await rec.wait(1)
    assert calls == ["listener", "handler2", "after"]
    off()
    c2.on_message = None
    calls.clear()
    c1.post_message(2)
    await rec.wait(2)
    assert calls == ["after"]
    with pytest.raises(ValueError):
        c2.add_listener("bogus", print)


async def test_a_raising_listener_does_not_stop_the_others(
    buses: Buses, caplog: pytest.LogCaptureFixture
) -> None:
    bus = await buses.open()
    c1, c2, c3 = (BroadcastChannel("raise", bus=bus) for _ in range(3))

    def boom(ev: MessageEvent) -> None:
        raise RuntimeError("listener bug")

    c2.add_listener("message", boom)
    r2, r3 = listen(c2), listen(c3)
    c1.post_message("x")
    await r3.wait(1)
    assert r2.data == ["x"]
    assert "listener bug" in caplog.text


async def test_one_loop_callback_per_batch_of_posts(
    buses: Buses, monkeypatch: pytest.MonkeyPatch
) -> None:
    bus = await buses.open()
    sender = BroadcastChannel("batch", bus=bus)
    recs = [listen(BroadcastChannel("batch", bus=bus)) for _ in range(10)]
    loop = asyncio.get_running_loop()
    calls = []
    real = loop.call_soon

    def counting(cb, *args, **kw):  # type: ignore[no-untyped-def]
        calls.append(getattr(cb, "__qualname__", repr(cb)))
        return real(cb, *args, **kw)

    monkeypatch.setattr(loop, "call_soon", counting)
    for i in range(100):
        sender.post_message(i)
    monkeypatch.setattr(loop, "call_soon", real)
    assert calls.count("Dispatcher._drain") == 1, calls
    assert len(calls) <= 2, calls  # the drain, plus at most one hub flush
    for rec in recs:
        await rec.wait(100)
        assert rec.data == list(range(100))


async def test_in_process_only_bus(buses: Buses) -> None:
    bus = LocalBus("solo")
    assert not bus.cross_process and bus.is_leader and bus.epoch == 0
    c1, c2 = BroadcastChannel("x", bus=bus), BroadcastChannel("x", bus=bus)
    rec = listen(c2)
    c1.post_message({"a": [1]})
    (ev,) = await rec.wait(1)
    assert ev.data == {"a": [1]} and ev.seq is None and ev.sender == bus.member_id
    await bus.close()
