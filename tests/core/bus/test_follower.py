"""A follower facing a misbehaving hub: fencing, validation, messageerror, gaps, reconnects."""

from __future__ import annotations

import asyncio
import json
import struct
import time

import pytest

from core.bus import BroadcastChannel, LocalBus
from core.bus._lock import LeaderLock
from core.bus._runtime import resolve
from tests.support.bus import listen
from tests.support.waiting import wait_until


def frame(obj: object) -> bytes:
    body = obj if isinstance(obj, bytes) else json.dumps(obj, separators=(",", ":")).encode()
    return struct.pack(">I", len(body)) + body


def welcome(epoch: int, seq: int = 0, base: tuple[int, int] = (0, 0)) -> bytes:
    """``base``: (epoch, seq) the hub's epoch started from."""
    w = {
        "k": "welcome",
        "e": epoch,
        "v": 1,
        "l": "fake-1",
        "s": seq,
        "b": base[1],
        "be": base[0],
        "r": seq + 1,
        "ms": [{"m": "fake-1", "pid": 1, "p": []}],
    }
    return frame(w)


def msg(epoch: int, seq: int, mid: int, data: object, **over: object) -> bytes:
    m = {
        "s": seq,
        "src": "fake-1",
        "e": epoch,
        "v": 1,
        "k": "m",
        "c": "x",
        "id": mid,
        "t": time.monotonic_ns(),
        "d": data,
    }
    m.update(over)
    return frame(m)


class FakeHub:
    """Holds the scope's lock (so the bus must follow) and serves scripted frames."""

    def __init__(self, scope: str, runtime_dir: str) -> None:
        self.paths = resolve(scope, runtime_dir)
        self.lock = LeaderLock(self.paths.lock, self.paths.epoch)
        assert self.lock.try_acquire()
        self.conns: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await self.conns.put((r, w))

        self.server = await asyncio.start_unix_server(on_conn, self.paths.address)

    async def accept(self) -> tuple[dict, asyncio.StreamReader, asyncio.StreamWriter]:
        r, w = await asyncio.wait_for(self.conns.get(), 5)
        (n,) = struct.unpack(">I", await r.readexactly(4))
        return json.loads(await r.readexactly(n)), r, w

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        self.lock.close()


@pytest.fixture
async def fake(scope: str, runtime_dir: str):  # type: ignore[no-untyped-def]
    hub = FakeHub(scope, runtime_dir)
    await hub.start()
    yield hub
    hub.close()


async def test_follower_validates_and_fences_frames(
    fake: FakeHub, scope: str, runtime_dir: str
) -> None:
    opening = asyncio.create_task(LocalBus.open(scope, runtime_dir=runtime_dir))
    h, _r, w = await fake.accept()
    assert (h["k"], h["e"], h["le"]) == ("hello", 0, 0)
    w.write(welcome(epoch=5))
    bus = await opening
    try:
        assert not bus.is_leader and bus.epoch == 5 and bus.leader_id == "fake-1"
        ch = BroadcastChannel("x", bus=bus)
        msgs, errs = listen(ch), listen(ch, "messageerror")
        gaps: list[tuple[int, int]] = []
        bus.gap.connect(lambda e, s: gaps.append((e, s)))
        w.write(
            msg(5, 1, 1, "one")
            + msg(4, 2, 2, "older epoch: refused")
            + msg(5, 2, 2, "unknown field", extra=1)  # invalid -> messageerror
            + msg(5, 3, 3, "future version", v=2)  # -> messageerror
            + msg(5, 4, 1, "duplicate id: dropped")
            + frame(b"\xff garbage")  # no channel recoverable: dropped silently
            + msg(5, 9, 4, "seq 5-8 were ours")  # not a gap: the hub skips our own messages
        )
        await msgs.wait(2)
        await errs.wait(2)
        assert msgs.data == ["one", "seq 5-8 were ours"]
        assert [e.error.split(":")[0] for e in errs.events] == [
            "invalid frame",
            "unsupported frame version 2",
        ]
        await wait_until(lambda: bool(gaps), "a gap reported", timeout=5)
        assert gaps == [(5, 2)]  # frames it could not use: "missed", coalesced into one event
        gaps.clear()
        # A hub of an older epoch than already seen is refused; the bus keeps reconnecting.
        w.write(struct.pack(">I", 0xFFFFFFFF))  # bad length: follower drops the connection
        h2, _r2, w2 = await fake.accept()
        assert (h2["le"], h2["ls"], h2["e"]) == (5, 9, 5)
        w2.write(welcome(epoch=3))
        h3, _r3, w3 = await fake.accept()
        assert h3["e"] == 5
        # A new epoch that started from another position than ours: gap.
        w3.write(welcome(epoch=6, seq=7, base=(5, 7)))
        await wait_until(lambda: bus.epoch == 6 and bool(gaps), "epoch 6 and a gap", timeout=5)
        assert gaps == [(6, 8)]
        w3.write(msg(6, 8, 5, "new epoch"))
        await msgs.wait(3)
        assert msgs.data[-1] == "new epoch"
        # Same position as the new hub's base: no gap.
        w3.write(struct.pack(">I", 0))
        h4, _r4, w4 = await fake.accept()
        assert (h4["le"], h4["ls"]) == (6, 8)
        w4.write(welcome(epoch=7, seq=8, base=(6, 8)))
        await wait_until(lambda: bus.epoch == 7, "epoch 7", timeout=5)
        w4.write(msg(7, 9, 6, "epoch 7"))
        await msgs.wait(4)
        assert gaps == [(6, 8)]
    finally:
        await bus.close()


async def test_post_time_decides_who_receives(fake: FakeHub, scope: str, runtime_dir: str) -> None:
    opening = asyncio.create_task(LocalBus.open(scope, runtime_dir=runtime_dir))
    _h, _r, w = await fake.accept()
    w.write(welcome(epoch=1))
    bus = await opening
    try:
        before = time.monotonic_ns()
        ch = BroadcastChannel("x", bus=bus)
        rec = listen(ch)
        w.write(
            msg(1, 1, 1, "posted before the channel existed", t=before)
            + msg(1, 2, 2, "a minute old: foreign clock?", t=before - 60_000_000_000)
            + msg(1, 3, 3, "posted after", t=time.monotonic_ns())
        )
        await rec.wait(2)
        assert rec.data == ["a minute old: foreign clock?", "posted after"]
    finally:
        await bus.close()
