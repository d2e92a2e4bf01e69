"""Test hooks for tests that drive real app processes (tests/desktop/test_failover.py).

With ``CONCORD_TEST_HOOKS=stdin`` the app reads one command per line from its stdin and acts as
a window would, through the ``Client``; each result is logged (INFO, logger ``concord.hook``):

* ``create <title>``        → ``hook: created <conversation id>``
* ``send <cid> <text>``     → ``hook: queued send <cid>``
* ``rename <cid> <title>``  → ``hook: queued rename <cid>``
* ``synced``                → ``hook: synced`` once every action is acknowledged and applied

Failures are logged as ``hook: failed <command>: <error>``. Off by default; no other effect.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from typing import Any

log = logging.getLogger(__name__)


def install(client: Any) -> None:
    """Start reading commands from stdin if the environment asks for it."""
    if os.environ.get("CONCORD_TEST_HOOKS") != "stdin":
        return
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()

    def spawn(line: str) -> None:
        task = loop.create_task(run(client, line))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def read() -> None:
        for line in sys.stdin:
            if line.strip():
                loop.call_soon_threadsafe(spawn, line.strip())

    threading.Thread(target=read, name="concord-test-hooks", daemon=True).start()


async def run(client: Any, line: str) -> None:
    cmd, _, rest = line.partition(" ")
    try:
        if cmd == "create":
            view = await client.create_conversation(rest)
            log.info("hook: created %s", view.id)
        elif cmd in ("send", "rename"):
            cid, _, text = rest.partition(" ")
            if cmd == "send":
                await client.send_message(cid, text)
            else:
                await client.rename_conversation(cid, text)
            log.info("hook: queued %s %s", cmd, cid)
        elif cmd == "synced":
            await client.wait_synced(30)
            log.info("hook: synced")
        else:
            log.info("hook: failed %s: unknown command", cmd)
    except Exception as exc:
        log.info("hook: failed %s: %s: %s", cmd, type(exc).__name__, exc)
