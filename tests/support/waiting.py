"""Bounded waiting for conditions that have no event of their own.

One convention for the whole suite: ``await wait_until(predicate, "what is awaited")``. The
predicate may be sync or async; the wait is bounded in time and in the number of polls; a timeout
fails the test with "timed out after Xs waiting for <what>" and the predicate's last value.
``wait_until_sync`` is the same for synchronous tests (it blocks the calling thread).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

DEFAULT_TIMEOUT = 10.0
DEFAULT_INTERVAL = 0.01
_REPR_LIMIT = 300  # enough to see the last value, short enough to keep the failure readable


def _timed_out(
    what: str, timeout: float, last: Any, detail: Callable[[], Any] | None
) -> AssertionError:
    shown = repr(last)
    if len(shown) > _REPR_LIMIT:
        shown = shown[:_REPR_LIMIT] + "…"
    extra = f"; {detail()!r}" if detail is not None else ""
    return AssertionError(f"timed out after {timeout}s waiting for {what} (last {shown}){extra}")


async def wait_until(
    predicate: Callable[[], Any],
    what: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = DEFAULT_INTERVAL,
    detail: Callable[[], Any] | None = None,
) -> Any:
    """Poll ``predicate`` (sync or async) every ``interval`` seconds until it returns a truthy
    value, and return that value. After ``timeout`` seconds, fail with ``what`` (a short phrase:
    "bob sees the rename"), the last value and, if given, ``detail()``."""
    last: Any = None
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / interval) + 2):
        last = predicate()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(interval)
    raise _timed_out(what, timeout, last, detail)


def wait_until_sync(
    predicate: Callable[[], Any],
    what: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 0.005,
    detail: Callable[[], Any] | None = None,
) -> Any:
    """``wait_until`` for synchronous tests: polls a sync ``predicate`` on this thread."""
    last: Any = None
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / interval) + 2):
        last = predicate()
        if last:
            return last
        if time.monotonic() > deadline:
            break
        time.sleep(interval)
    raise _timed_out(what, timeout, last, detail)


async def equals(value: Awaitable[Any], expected: Any) -> bool:
    """For ``wait_until(lambda: equals(some_coroutine(), expected), ...)``."""
    return (await value) == expected
