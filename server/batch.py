"""Coalescing of the reads idle streams make (docs/architecture.md §4.7).

The hub's ticker wakes every stream whose heartbeat is due in the same loop iteration; each
asks for its feed head and whether its session stands. :class:`Batcher` turns the keys asked
for in one loop iteration into one storage call, and :class:`SingleFlight` lets concurrent
identical reads (the streams of one user catching up from the same cursor) share one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from .storage import FeedPage, FeedState, Storage, StoredChange

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Batcher(Generic[K, V]):
    """``await get(key)``: the keys asked for until the loop next runs its ready callbacks are
    fetched together by one ``fetch(keys)``; a key it leaves out answers ``default``."""

    def __init__(self, fetch: Callable[[list[K]], Awaitable[dict[K, V]]], default: V) -> None:
        self._fetch = fetch
        self._default = default
        self._pending: dict[K, asyncio.Future[V]] = {}
        self._tasks: set[asyncio.Future[None]] = set()
        self.batches = 0  # how many fetches ran (for tests and benchmarks)

    def get(self, key: K) -> asyncio.Future[V]:
        """The value for ``key``; cancelling the caller leaves the others sharing it alone."""
        fut = self._pending.get(key)
        if fut is None:
            loop = asyncio.get_running_loop()
            if not self._pending:
                # After the callbacks already ready (the other streams the ticker just woke).
                loop.call_soon(self._flush)
            fut = self._pending[key] = loop.create_future()
        return asyncio.shield(fut)

    def _flush(self) -> None:
        pending, self._pending = self._pending, {}
        if pending:
            self.batches += 1
            task = asyncio.ensure_future(self._run(pending))
            self._tasks.add(task)  # a reference until it ends
            task.add_done_callback(self._tasks.discard)

    async def _run(self, pending: dict[K, asyncio.Future[V]]) -> None:
        try:
            found = await self._fetch(list(pending))
        except BaseException as exc:
            for fut in pending.values():
                if not fut.done():
                    fut.set_exception(exc)
                    fut.exception()  # retrieved: each waiter re-raises it from its own shield
            if not isinstance(exc, Exception):
                raise
            return
        for key, fut in pending.items():
            if not fut.done():
                fut.set_result(found.get(key, self._default))


class SingleFlight(Generic[K, V]):
    """``await run(key, make)``: while a read for ``key`` is in flight, callers share it."""

    def __init__(self) -> None:
        self._flying: dict[K, asyncio.Future[V]] = {}

    async def run(self, key: K, make: Callable[[], Awaitable[V]]) -> V:
        fut = self._flying.get(key)
        if fut is not None:
            try:
                return await asyncio.shield(fut)
            except asyncio.CancelledError:
                if not fut.cancelled():
                    raise  # this caller was cancelled
                return await make()  # the one reading for all was: read alone
        fut = asyncio.get_running_loop().create_future()
        self._flying[key] = fut
        try:
            value = await make()
        except asyncio.CancelledError:
            fut.cancel()
            raise
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: the sharers (if any) re-raise it themselves
            raise
        else:
            fut.set_result(value)
            return value
        finally:
            del self._flying[key]


class FeedReads:
    """The feed reads of this instance's streams, shared: heads batched per loop iteration
    (one query per heartbeat tick); catch-up pages batched per loop iteration too (the users a
    broadcast from another instance poked, read in one query) and shared by the streams of one
    user that ask for the same range at the same time."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._heads: Batcher[int, FeedState] = Batcher(storage.feed_heads, FeedState(0, 1))
        self._pages: SingleFlight[FeedPage, list[StoredChange]] = SingleFlight()
        self._page_batches: Batcher[FeedPage, list[StoredChange]] = Batcher(
            storage.changes_since_many, []
        )

    @property
    def head_batches(self) -> int:
        return self._heads.batches

    async def head(self, user_id: int) -> int:
        return (await self._heads.get(user_id)).head

    async def changes_since(self, user_id: int, since: int, limit: int) -> list[StoredChange]:
        key = (user_id, since, limit)
        return await self._pages.run(key, lambda: self._page_batches.get(key))


__all__ = ["Batcher", "FeedReads", "SingleFlight"]
