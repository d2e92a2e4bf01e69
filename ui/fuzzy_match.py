"""``match_score``: how well a typed pattern matches a title (Ctrl+K ranks conversations by it).

Matching ignores case; prefixes rank first, then matches at a word start, then anywhere, then
fuzzy ones (the letters in order, with gaps).
"""

from __future__ import annotations


def match_score(pattern: str, title: str) -> int | None:
    """Lower is better: 0 prefix, 1 word start, 2 substring, 3 fuzzy; None: no match."""
    p, t = pattern.casefold().strip(), title.casefold()
    if not p:
        return 0
    if t.startswith(p):
        return 0
    at = t.find(p)
    if at >= 0:
        while at >= 0:
            if not t[at - 1].isalnum():
                return 1
            at = t.find(p, at + 1)
        return 2
    it = iter(t)
    if all(ch in it for ch in p.replace(" ", "")):  # each letter found after the previous one
        return 3
    return None
