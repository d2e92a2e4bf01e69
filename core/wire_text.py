"""The wire's text formats, shared by the server and the client (docs/architecture.md §4):
event ids (``"<epoch>:<seq>"``) and the words of a search query. Re-exported by
:mod:`core.protocol`, which server code imports.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "SEARCH_DEFAULT_LIMIT",
    "SEARCH_MAX_LIMIT",
    "SEARCH_MAX_QUERY",
    "SEARCH_MAX_TERMS",
    "ProtocolError",
    "format_event_id",
    "parse_event_id",
    "search_terms",
    "well_formed",
]


class ProtocolError(ValueError):
    """A body or field that does not match the schema; ``str()`` says where."""


def well_formed(text: str) -> str:
    """``text`` as UTF-8 can carry it: surrogate halves that make a pair are joined, a lone one
    (a bad paste, a cut emoji from a UI toolkit) becomes U+FFFD. Text sent to the server passes
    here first, so encoding it can never fail."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def format_event_id(epoch: int, seq: int) -> str:
    return f"{epoch}:{seq}"


def parse_event_id(text: str) -> tuple[int, int]:
    """Parse ``"<epoch>:<seq>"`` into integers; raises :class:`ProtocolError` when malformed."""
    epoch_s, sep, seq_s = text.strip().partition(":")
    if (
        not sep
        or not (epoch_s.isascii() and epoch_s.isdigit())
        or not (seq_s.isascii() and seq_s.isdigit())
    ):
        raise ProtocolError(f"event id must be '<epoch>:<seq>', got {text[:40]!r}")
    if len(epoch_s) > 18 or len(seq_s) > 18:
        raise ProtocolError("event id out of range")
    return int(epoch_s), int(seq_s)


# --- search (``GET search``, and the cache's own index: docs/architecture.md §4.3, §5.11) -------

SEARCH_MAX_QUERY = 256  # characters of ``q``
SEARCH_MAX_TERMS = 16
SEARCH_DEFAULT_LIMIT = 20
SEARCH_MAX_LIMIT = 100
_WORD = re.compile(r"[^\W_]+")


def search_terms(query: str) -> list[str]:
    """The words of a search query, as both indexes tokenize text: runs of letters and digits
    (NFC-normalised; punctuation, quotes and operators are separators, never syntax). Every
    word must match a whole word of the text, the last one as a prefix ("deploy fri" finds
    "Deploy on Friday"); case and diacritics are ignored. At most :data:`SEARCH_MAX_TERMS`."""
    text = well_formed(query[:SEARCH_MAX_QUERY])
    words = _WORD.findall(unicodedata.normalize("NFC", text))
    return words[:SEARCH_MAX_TERMS]
