"""Small asyncio helpers the engine's loops share."""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait at most ``seconds`` for ``event``; True if it is set.

    Not ``asyncio.wait_for``: on 3.11 a cancellation that lands as its timeout expires comes out
    as ``TimeoutError``, and a loop that treats that as "time to retry" never ends, so closing
    the client hangs (seen here). ``asyncio.timeout`` tells the two apart.
    """
    try:
        async with asyncio.timeout(max(0.0, seconds)):
            await event.wait()
    except TimeoutError:
        return False
    return True
