"""The app's event loop: qasync's, plus the async-generator hooks asyncio's own loops install.

qasync 0.28 never calls ``sys.set_asyncgen_hooks``. An async generator abandoned mid-iteration
(httpx's byte streams once an SSE stream is left at a ``bye`` or ``reset``) is then finalised by
the garbage collector outside any loop, fails, and prints "Exception ignored ... no running event
loop". With the hooks, such a generator is closed as a task on this loop, and any still open at
shutdown are closed by ``shutdown_asyncgens`` (which ``asyncio.run``/``Runner`` call).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import qasync


class QtEventLoop(qasync.QEventLoop):
    """asyncio driven by Qt's event loop, finalising async generators as asyncio does."""

    def run_forever(self) -> Any:
        previous = sys.get_asyncgen_hooks()
        # The same two hooks BaseEventLoop.run_forever installs (CPython since 3.6).
        sys.set_asyncgen_hooks(
            firstiter=self._asyncgen_firstiter_hook, finalizer=self._asyncgen_finalizer_hook
        )
        try:
            return super().run_forever()
        finally:
            sys.set_asyncgen_hooks(*previous)


def run_qt(coro_fn: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run ``coro_fn()`` to completion on a :class:`QtEventLoop` (the QApplication must exist).

    ``asyncio.Runner`` with a loop factory is what ``qasync.run`` amounts to on 3.12+, and works
    on 3.11 too without swapping the process's event-loop policy.
    """
    with asyncio.Runner(loop_factory=QtEventLoop) as runner:
        return runner.run(coro_fn())
