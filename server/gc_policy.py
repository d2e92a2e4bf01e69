"""The cyclic garbage collector's settings for a ``concord-server serve`` process.

With thousands of open streams the heap holds ~240 tracked objects per stream (~720k at 3,000),
and under a steady write load CPython's default thresholds (700, 10, 10) ran a full collection
every ~2 s that walked them all: a ~330 ms pause, the whole tail of a 1,000-member broadcast
(``tests/bench/broadcast.py``: last subscriber p99 ~530 ms, of which the POST alone ~450 ms).
A larger first generation lets a request's short-lived objects die by reference count before
any collection sees them, so far fewer reach the old generation and full collections become
rare; what startup made (modules, settings) is frozen out of every later collection.
"""

from __future__ import annotations

import gc

FIRST_GENERATION = 50_000  # allocations between young collections (CPython's default: 700)


def tune_for_streams() -> None:
    """Call once in a server process, after its imports and before it serves."""
    gc.collect()
    gc.freeze()
    _, second, third = gc.get_threshold()
    gc.set_threshold(FIRST_GENERATION, second, third)
