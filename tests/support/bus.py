"""Helpers for bus tests: a listener that records events, a FIFO fence, buses of one scope that
are closed at teardown, and the bus fixtures (a plugin of ``tests/conftest.py``): a short private
``runtime_dir``, a unique ``scope``, ``buses``, ``open_bus`` and member processes (``children``).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from core.bus import BroadcastChannel, LocalBus, MessageEvent

from .bus_child import Child


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
    """A ``Recorder`` added as a listener of ``type`` events on ``ch``."""
    rec = Recorder()
    ch.add_listener(type, rec)
    return rec


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


@pytest.fixture
def runtime_dir() -> Iterator[str]:
    # Short (socket paths must stay < 100 bytes), private, removed afterwards.
    path = tempfile.mkdtemp(prefix="cb-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def scope() -> str:
    return f"test-{uuid.uuid4().hex}"


@pytest.fixture
async def children() -> AsyncIterator[list[Child]]:
    """Append spawned children here; they are stopped (or killed) after the test."""
    spawned: list[Child] = []
    yield spawned
    for child in spawned:
        await child.stop()


@pytest.fixture
async def buses(scope: str, runtime_dir: str) -> AsyncIterator[Buses]:
    """``await buses.open()``: buses of the test's scope (the first one leads)."""
    b = Buses(scope, runtime_dir)
    yield b
    await b.close_all()


@pytest.fixture
async def open_bus(
    scope: str, runtime_dir: str
) -> AsyncIterator[Callable[[], Awaitable[LocalBus]]]:
    """``await open_bus()``: one more member of the test's scope (closed afterwards)."""
    buses: list[LocalBus] = []

    async def factory() -> LocalBus:
        buses.append(await LocalBus.open(scope=scope, runtime_dir=runtime_dir))
        return buses[-1]

    yield factory
    for bus in reversed(buses):
        await bus.close()
