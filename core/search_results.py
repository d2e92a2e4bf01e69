"""What a search finds (docs/architecture.md §5.11): data types only, so ``ui/`` may import them
(like :mod:`core.model`), and the match ranges a view highlights.

A query's words (:func:`core.protocol.search_terms`) match whole words of the text, the last one
as a prefix, ignoring case and diacritics — the same rule the cache's FTS5 index
(``unicode61 remove_diacritics 2``) and the server's apply, so what is highlighted is what made
the result match.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Literal

from .model import ConversationView, MessageView

__all__ = [
    "ConversationHit",
    "MessageHit",
    "SearchResults",
    "ServerResults",
    "fold",
    "match_ranges",
]

Range = tuple[int, int]  # [start, end) in the text, in characters

_WORD = re.compile(r"[^\W_]+")


def fold(text: str) -> str:
    """Lower case without diacritics ("Déjà" → "deja"), as the index compares words."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


def match_ranges(text: str, terms: list[str] | tuple[str, ...]) -> tuple[Range, ...]:
    """The words of ``text`` that ``terms`` match (every term a whole word, the last a prefix),
    as ``(start, end)`` character ranges in ``text``, in order."""
    if not terms:
        return ()
    folded = [fold(t) for t in terms]
    whole, prefix = set(folded[:-1]), folded[-1]
    out: list[Range] = []
    for m in _WORD.finditer(text):
        word = fold(m.group())
        if word in whole or word.startswith(prefix):
            out.append((m.start(), m.end()))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class ConversationHit:
    """A conversation whose title matches; ``ranges`` are in ``conversation.title``."""

    conversation: ConversationView
    ranges: tuple[Range, ...] = ()


@dataclass(frozen=True, slots=True)
class MessageHit:
    """A message that matches; ``ranges`` are in ``message.body``. ``source`` says where it was
    found: the cache, or the server (history older than the cache)."""

    message: MessageView
    title: str  # its conversation's title
    ranges: tuple[Range, ...] = ()
    source: Literal["cache", "server"] = "cache"


@dataclass(frozen=True, slots=True)
class SearchResults:
    """``Client.search``: matching conversations (best first) and messages (newest first).
    ``more`` is True when more messages matched than were asked for."""

    query: str
    terms: tuple[str, ...] = ()
    conversations: list[ConversationHit] = field(default_factory=list)
    messages: list[MessageHit] = field(default_factory=list)
    more: bool = False


@dataclass(frozen=True, slots=True)
class ServerResults:
    """``Client.search_server``: one page of the server's matches, newest first; pass
    ``next_before`` as ``before`` for the next page (None: no more)."""

    query: str
    messages: list[MessageHit] = field(default_factory=list)
    next_before: int | None = None
