"""A member of a sync_state group in its own process (driven by
tests/e2e/bus/test_sync_state_processes.py).

argv: scope runtime_dir. Prints JSON lines on stdout: {"synced": state} once it has its peers'
state, {"wrote": ...} after it saw theme == "dark" and wrote font_size; exits on "bye" on stdin.
"""

from __future__ import annotations

import asyncio
import json
import sys

from core.bus import LocalBus, PreferenceStore, sync_state


def emit(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def main(scope: str, runtime_dir: str) -> None:
    loop = asyncio.get_running_loop()
    bus = await LocalBus.open(scope=scope, runtime_dir=runtime_dir)
    store = PreferenceStore({"theme": "light"})
    changed = asyncio.Event()
    store.subscribe(lambda _changed, _origin: changed.set())
    async with asyncio.timeout(20), sync_state(store, "prefs", bus=bus) as handle:
        await handle.wait_synced()
        emit({"synced": store.snapshot()})
        while store.get("theme") != "dark":
            changed.clear()
            await changed.wait()
        store.set("font_size", 15)
        emit({"wrote": store.snapshot()})
        await loop.run_in_executor(None, sys.stdin.readline)  # "bye"
    await bus.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
