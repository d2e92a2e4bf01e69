"""In-process helpers for the bus tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from core.bus import BroadcastChannel, LocalBus, MessageEvent


class Recorder:
    """Listener that records events and lets a test await a number of them."""

    def __init__(self) -> None:
        self.events: list[MessageEvent] = []
        self._changed = asyncio.Event()

    def __call__(self, event: MessageEvent) -> None:
        self.events.append(event)
        self._changed.set()

    @property
    def data(self) -> list[Any]:
        return [e.data for e in self.events]

    async def wait(self, count: int, timeout: float = 5.0) -> list[MessageEvent]:
        async with asyncio.timeout(timeout):
            while len(self.events) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.events


def listen(ch: BroadcastChannel, type: str = "message") -> Recorder:
    rec = Recorder()
    ch.add_listener(type, rec)
    return rec


async def wait_until(pred: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll a condition every 5 ms, at most ``timeout`` seconds (for state changes that have
    no event of their own)."""
    async with asyncio.timeout(timeout):
        while not pred():  # noqa: ASYNC110 - bounded poll of state that has no event
            await asyncio.sleep(0.005)


async def fence(sender: BroadcastChannel, *receivers: Recorder, timeout: float = 5.0) -> None:
    """Post a sentinel and wait until every receiver has it: anything the same sender posted
    earlier has been delivered by then (FIFO per sender)."""
    marks = [len(r.events) for r in receivers]
    sender.post_message("__fence__")
    async with asyncio.timeout(timeout):
        for rec, mark in zip(receivers, marks, strict=True):
            while "__fence__" not in rec.data[mark:]:
                await rec.wait(len(rec.events) + 1, timeout)


class Buses:
    """Opens buses of one scope and closes them at teardown."""

    def __init__(self, scope: str, runtime_dir: str) -> None:
        self.scope = scope
        self.runtime_dir = runtime_dir
        self.opened: list[LocalBus] = []

    async def open(self, scope: str | None = None) -> LocalBus:
        bus = await LocalBus.open(scope or self.scope, runtime_dir=self.runtime_dir)
        self.opened.append(bus)
        return bus

    async def close_all(self) -> None:
        for bus in reversed(self.opened):
            await bus.close()
