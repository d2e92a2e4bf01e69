"""``sync_state`` across two real processes: a member in a child process catches up on start and
both see each other's writes."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from core.bus._sync_state import PreferenceStore, sync_state
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[3]
CHILD = Path(__file__).with_name("_sync_state_child.py")


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
                await wait_until(
                    lambda: store.get("font_size") == 15, "the child's font size", timeout=20
                )
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
