"""The app's qasync loop finalises abandoned async generators on the loop, as asyncio does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from desktop.loop import QtEventLoop


async def test_tests_run_on_the_apps_loop_class() -> None:
    assert isinstance(asyncio.get_running_loop(), QtEventLoop)


async def test_an_abandoned_async_generator_is_closed_as_a_task_on_the_loop() -> None:
    closed = asyncio.Event()

    async def chunks() -> AsyncIterator[int]:
        try:
            yield 1
            yield 2
        finally:
            await asyncio.sleep(0)  # clean-up that needs the loop, like httpx's stream close
            closed.set()

    stream = chunks()
    assert await anext(stream) == 1
    del stream  # left mid-iteration, as a consumer does when it leaves at a `bye`
    await asyncio.wait_for(closed.wait(), 5)
