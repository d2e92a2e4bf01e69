"""``Search``: what ``Client.search`` and ``Client.search_server`` answer (docs/architecture.md
§5.11).

Local search runs on the cache's FTS5 index (:mod:`core._search_store`), offline, in well under
a frame for a keystroke; server search reaches history older than the cache through the sync
leader. Both use the words of :func:`core.protocol.search_terms`, so a user's quotes,
operators and stray punctuation are only ever text.
"""

from __future__ import annotations

from typing import Literal

from . import protocol as p
from .leadership import SyncLeadership
from .model import message_view, sort_key
from .read_model import ReadModel
from .search_results import (
    ConversationHit,
    MessageHit,
    SearchResults,
    ServerResults,
    fold,
    match_ranges,
)
from .store import LocalStore

__all__ = ["Search"]

TITLE_HITS = 20


class Search:
    """The searches of one :class:`~core.client.Client`."""

    def __init__(self, store: LocalStore, model: ReadModel, leadership: SyncLeadership) -> None:
        self.store = store
        self.model = model
        self.leadership = leadership

    def search(
        self, query: str, limit: int = 50, conversation_id: str | None = None
    ) -> SearchResults:
        """Cached conversations whose title matches (titles starting with the first word first,
        then as the list orders them) and cached messages, newest first; only messages of
        ``conversation_id`` when given (then no conversations)."""
        terms = p.search_terms(query)
        if not terms:
            return SearchResults(query)
        convs: list[ConversationHit] = []
        if conversation_id is None:
            first = fold(terms[0])
            views = [
                v
                for cid in self.store.search_titles(terms, 10 * TITLE_HITS)
                if (v := self.model.conversation(cid)) is not None
            ]
            views.sort(key=lambda v: (not fold(v.title).startswith(first), sort_key(v)))
            convs = [ConversationHit(v, match_ranges(v.title, terms)) for v in views[:TITLE_HITS]]
        found = self.store.search_messages(terms, limit + 1, conversation_id)
        hits = [self._hit(m, terms, "cache") for m in found[:limit]]
        return SearchResults(
            query, tuple(terms), convs, [h for h in hits if h is not None], len(found) > limit
        )

    async def search_server(
        self, query: str, before: int | None = None, limit: int = p.SEARCH_DEFAULT_LIMIT
    ) -> ServerResults:
        """One page of the server's matches (newest first), including history the cache does
        not hold. Raises ``core.http.NetworkError``/``ApiError`` when the server cannot answer."""
        terms = p.search_terms(query)
        if not terms:
            return ServerResults(query)
        limit = max(1, min(limit, p.SEARCH_MAX_LIMIT))
        page = await self.leadership.searches.search(" ".join(terms), before, limit)
        hits = [self._hit(m, terms, "server") for m in page.messages]
        return ServerResults(query, [h for h in hits if h is not None], page.next_before)

    def _hit(
        self, message: p.Message, terms: list[str], source: Literal["cache", "server"]
    ) -> MessageHit | None:
        view = self.model.conversation(message.conversation_id)
        if view is None:  # a conversation this device no longer sees
            return None
        ranges = match_ranges(message.body, terms)
        return MessageHit(message_view(message), view.title, ranges, source)
