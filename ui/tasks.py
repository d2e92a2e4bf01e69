"""Run the core ``Client``'s coroutines from Qt slots without losing their errors.

``spawn(client.rename_conversation(cid, title), on_error)`` schedules the coroutine on the running
(qasync) loop, keeps a reference until it finishes (asyncio only keeps weak ones), and hands any
exception to ``on_error`` instead of letting it vanish in "Task exception was never retrieved".
``ValueError``/``KeyError`` are the user's input being refused (blank title, unknown id); anything
else is a bug and is logged with its traceback as well.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
ErrorHandler = Callable[[BaseException], None]

_running: set[asyncio.Future[Any]] = set()


def error_text(exc: BaseException) -> str:
    """A message fit for the user (``KeyError`` would otherwise show its repr in quotes)."""
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    return str(exc) or type(exc).__name__


def spawn(
    coro: Coroutine[Any, Any, T],
    on_error: ErrorHandler | None = None,
    on_done: Callable[[T], None] | None = None,
) -> asyncio.Future[T]:
    """Schedule ``coro``; report its result to ``on_done`` or its exception to ``on_error``.

    The callbacks run on the loop's thread (the GUI thread under qasync). A callback whose widget
    was deleted meanwhile (``RuntimeError`` from shiboken) is ignored, never raised into Qt.
    """
    task: asyncio.Future[T] = asyncio.ensure_future(coro)
    _running.add(task)

    def finished(t: asyncio.Future[T]) -> None:
        _running.discard(t)
        if t.cancelled():
            return
        exc = t.exception()
        try:
            if exc is None:
                if on_done is not None:
                    on_done(t.result())
                return
            if not isinstance(exc, ValueError | KeyError):
                log.error("background task failed", exc_info=exc)
            if on_error is not None:
                on_error(exc)
            elif isinstance(exc, ValueError | KeyError):
                log.warning("refused: %s", error_text(exc))
        except RuntimeError as cb_exc:  # the widget behind the callback is gone
            log.debug("task callback skipped: %s", cb_exc)
        except Exception:
            log.exception("task callback failed")

    task.add_done_callback(finished)
    return task


def running() -> int:
    """How many spawned tasks have not finished yet (for tests and shutdown)."""
    return len(_running)


async def drain(timeout: float = 5.0) -> None:  # noqa: ASYNC109 (a bound for shutdown)
    """Wait until every spawned task has finished (or ``timeout`` passes)."""
    if _running:
        await asyncio.wait(set(_running), timeout=timeout)
