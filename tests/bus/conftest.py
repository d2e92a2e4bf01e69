"""Fixtures for the bus tests: a short private runtime dir, unique scopes, child processes."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from core.bus import LocalBus

from ._harness import Child
from .helpers import Buses


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
async def open_bus(scope: str, runtime_dir: str):
    """``await open_bus()``: one more member of the test's scope (closed afterwards)."""
    buses: list[LocalBus] = []

    async def factory() -> LocalBus:
        buses.append(await LocalBus.open(scope=scope, runtime_dir=runtime_dir))
        return buses[-1]

    yield factory
    for bus in reversed(buses):
        await bus.close()
