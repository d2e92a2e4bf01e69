"""``wait_event`` never turns a cancellation into a timeout (3.11's ``wait_for`` can, and a retry
loop around it then never ends: closing the client hung on it)."""

from __future__ import annotations

import asyncio

import pytest

from core._aio import wait_event


async def test_wait_event_reports_set_and_timeout() -> None:
    ev = asyncio.Event()
    assert await wait_event(ev, 0.01) is False
    ev.set()
    assert await wait_event(ev, 0.01) is True


@pytest.mark.parametrize("steps", range(6))
async def test_a_cancel_arriving_with_the_event_ends_the_loop(steps: int) -> None:
    ev = asyncio.Event()

    async def retry_loop() -> None:
        while True:
            await wait_event(ev, 30)
            ev.clear()

    task = asyncio.create_task(retry_loop())
    for _ in range(3):
        await asyncio.sleep(0)  # the loop is waiting
    ev.set()
    for _ in range(steps):  # the cancel lands at each point of the wake-up in turn
        await asyncio.sleep(0)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=2)
    assert done and task.cancelled()
