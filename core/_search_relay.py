"""Server search from any process of a profile (docs/architecture.md §5.1, §5.11): the sync
leader calls ``GET search`` itself; a follower, which holds no tokens, asks the leader with a
``search`` bus message and waits for its ``found`` (bodies cut to :data:`SEARCH_SNIPPET`
characters, so an answer always fits a bus frame)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import msgspec

from . import protocol as p
from .http import NetworkError, ServerApi
from .sync_messages import SearchFound, SearchWanted, SyncChannel

__all__ = ["SEARCH_SNIPPET", "SearchRelay"]

SEARCH_SNIPPET = 2_000  # characters of a server hit's body sent to a follower
ANSWER_S = 15.0  # a follower's patience with the leader


class SearchRelay:
    """``api()`` is the leader's :class:`ServerApi` (None in a follower); ``spawn`` runs a
    task owned by the caller."""

    def __init__(
        self,
        channel: SyncChannel,
        api: Callable[[], ServerApi | None],
        spawn: Callable[[Coroutine[Any, Any, None]], None],
    ) -> None:
        self._channel = channel
        self._api = api
        self._spawn = spawn
        self._asked: dict[str, asyncio.Future[SearchFound]] = {}

    async def search(self, query: str, before: int | None, limit: int) -> p.SearchPage:
        """One page of ``GET search``; raises ``NetworkError`` or ``ApiError``."""
        api = self._api()
        if api is not None:
            return await api.search(query, before, limit)
        rid = uuid.uuid4().hex
        waiter = self._asked[rid] = asyncio.get_running_loop().create_future()
        self._channel.post(SearchWanted(rid=rid, q=query, before=before, limit=limit))
        try:
            async with asyncio.timeout(ANSWER_S):
                found = await waiter
        except TimeoutError:
            raise NetworkError("the process that syncs did not answer the search") from None
        finally:
            self._asked.pop(rid, None)
        if found.error is not None:
            raise NetworkError(found.error)
        return p.SearchPage(found.messages, found.next_before)

    def asked(self, message: SearchWanted) -> None:
        """A follower's question (the leader answers it)."""
        self._spawn(self._answer(message))

    def found(self, message: SearchFound) -> None:
        """The leader's answer: to this process's question, or to somebody else's."""
        waiter = self._asked.get(message.rid)
        if waiter is not None and not waiter.done():
            waiter.set_result(message)

    async def _answer(self, asked: SearchWanted) -> None:
        try:
            page = await self.search(asked.q, asked.before, asked.limit)
        except Exception as exc:
            self._channel.post(SearchFound(rid=asked.rid, error=str(exc) or type(exc).__name__))
            return
        cut = [msgspec.structs.replace(m, body=m.body[:SEARCH_SNIPPET]) for m in page.messages]
        self._channel.post(SearchFound(rid=asked.rid, messages=cut, next_before=page.next_before))
