"""Stopping an object's background tasks on shutdown, bounded: a shutdown never hangs on a peer
(Redis) that stopped answering."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 2.0


async def stop_tasks(tasks: list[asyncio.Task[None]], what: str) -> None:
    """Cancel ``tasks`` and wait for them at most ``STOP_TIMEOUT_S``; a task that has not
    stopped by then is logged and left to the loop's own end."""
    for task in tasks:
        task.cancel()
    if tasks:
        _, stuck = await asyncio.wait(tasks, timeout=STOP_TIMEOUT_S)
        if stuck:
            log.warning("%s: %d task(s) did not stop in time", what, len(stuck))


__all__ = ["STOP_TIMEOUT_S", "stop_tasks"]
