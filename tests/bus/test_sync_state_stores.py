"""``sync_state`` with any store that has the protocol, and across two real processes."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from core.bus._sync_state import LOCAL, PreferenceStore, sync_state

from .helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("_sync_state_child.py")


class DictStore:
    """The least a store needs (ObservableStore): get, update with origin, subscribe."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.listeners: list[Callable[[dict[str, Any], str], None]] = []

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def update(self, values: Mapping[str, Any], *, origin: str = LOCAL) -> None:
        self.data.update(values)
        for listener in self.listeners:
            listener(dict(values), origin)

    def subscribe(self, callback: Callable[[dict[str, Any], str], None]) -> Callable[[], None]:
        self.listeners.append(callback)
        return lambda: self.listeners.remove(callback)


async def test_any_store_with_the_protocol(open_bus, caplog) -> None:
    a, b = DictStore(), DictStore()
    async with (
        sync_state(a, "prefs", bus=await open_bus()),
        sync_state(b, "prefs", bus=await open_bus()),
    ):
        a.update({"zoom": {1, 2}})  # not JSON: logged, not synced
        a.update({"zoom": 1.25})
        await wait_until(lambda: b.get("zoom") == 1.25)
    assert "not a JSON value" in caplog.text


# -- two processes ---------------------------------------------------------------------------


async def test_two_processes(open_bus, scope: str, runtime_dir: str) -> None:
    store = PreferenceStore({"theme": "light"})
    async with sync_state(store, "prefs", bus=await open_bus()):
        store.set("sidebar_width", 300)  # before the child exists: it must catch up on start
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            str(CHILD),
            scope,
            runtime_dir,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
        )
        try:
            async with asyncio.timeout(20):
                line = await child.stdout.readline()
                assert json.loads(line) == {"synced": {"theme": "light", "sidebar_width": 300}}
                store.set("theme", "dark")
                await wait_until(lambda: store.get("font_size") == 15, timeout=20)
                assert json.loads(await child.stdout.readline()) == {
                    "wrote": {"theme": "dark", "sidebar_width": 300, "font_size": 15}
                }
                child.stdin.write(b"bye\n")
                await child.stdin.drain()
                assert await child.wait() == 0
        finally:
            if child.returncode is None:
                child.kill()
                await child.wait()
