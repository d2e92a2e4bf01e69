"""Notice that the machine slept or this process was stopped.

After a suspend, a stream that looks open may be a dead socket (noticed only after three
silent heartbeats) and the status would say "Live" over stale data. A tick that arrives much
later than asked, by the loop's clock (process stopped, loop blocked) or by a clock that counts
suspended time (``CLOCK_BOOTTIME``; the wall clock where there is none), means: reconnect now.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


def since_boot() -> float:
    """Seconds on a clock that keeps counting while the machine is suspended."""
    clock = getattr(time, "CLOCK_BOOTTIME", None)
    return time.clock_gettime(clock) if clock is not None else time.time()


async def watch_for_sleep(
    on_wake: Callable[[float], None],
    *,
    tick_s: float = 2.0,
    min_gap_s: float = 5.0,
    clocks: tuple[Callable[[], float], Callable[[], float]] = (time.monotonic, since_boot),
) -> None:
    """Call ``on_wake(gap_s)`` whenever a tick comes ``min_gap_s`` or more late, by either clock
    of ``clocks`` (the loop's, the suspend-counting one). Runs until cancelled."""
    loop_clock, boot_clock = clocks
    last_loop, last_boot = loop_clock(), boot_clock()
    while True:
        await asyncio.sleep(tick_s)
        now_loop, now_boot = loop_clock(), boot_clock()
        gap = max(now_loop - last_loop, now_boot - last_boot) - tick_s
        last_loop, last_boot = now_loop, now_boot
        if gap >= min_gap_s:  # a wall clock set back gives a negative gap: ignored
            on_wake(gap)
