"""The app's qasync loop: ``run_qt`` runs the async main to completion on it (result, errors,
clean shutdown), and it finalises abandoned async generators on the loop, as asyncio does."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from desktop.loop import QtEventLoop, run_qt

ROOT = Path(__file__).resolve().parents[2]


def test_run_qt_returns_the_result_of_a_coroutine_that_needs_the_loop(qapp) -> None:
    async def main() -> tuple[str, bool]:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        loop.call_later(0.01, done.set_result, "from a timer")  # only a running loop fires it
        return await asyncio.wait_for(done, 5), isinstance(loop, QtEventLoop)

    assert run_qt(main) == ("from a timer", True)


def test_run_qt_propagates_the_coroutines_exception(qapp) -> None:
    class Boom(Exception):
        pass

    async def main() -> None:
        await asyncio.sleep(0)
        raise Boom("from main")

    with pytest.raises(Boom, match="from main"):
        run_qt(main)


def test_run_qt_closes_async_generators_left_open_and_restores_the_hooks(qapp) -> None:
    """An async generator still suspended when main returns is closed by the loop's shutdown
    (``shutdown_asyncgens``), which only knows it through the hooks ``run_forever`` installs."""
    before = sys.get_asyncgen_hooks()
    events: list[str] = []

    async def chunks() -> AsyncIterator[int]:
        try:
            yield 1
            yield 2
        finally:
            await asyncio.sleep(0)  # clean-up that needs the running loop
            events.append("closed")

    async def main() -> AsyncIterator[int]:
        stream = chunks()
        assert await anext(stream) == 1
        return stream  # still referenced, so only the loop's shutdown can close it

    stream = run_qt(main)
    assert events == ["closed"]
    assert stream.ag_frame is None  # finished, not merely suspended
    assert sys.get_asyncgen_hooks() == before


def test_run_qt_returns_promptly_with_work_still_pending() -> None:
    """Quitting does not hang: tasks still waiting when main returns are cancelled (and their
    clean-up runs), a pending timer is dropped. In a child, so a hang is a bounded failure."""
    script = textwrap.dedent(
        """
        import asyncio
        from PySide6.QtWidgets import QApplication
        from desktop.loop import run_qt

        app = QApplication([])
        app.setQuitOnLastWindowClosed(False)

        async def forever():
            try:
                await asyncio.Event().wait()
            finally:
                print("cancelled", flush=True)

        async def main():
            loop = asyncio.get_running_loop()
            loop.create_task(forever())
            loop.call_later(3600, print, "never")
            await asyncio.sleep(0)
            return 7

        print("result", run_qt(main), flush=True)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["cancelled", "result 7"]


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
