"""Pokes between instances (docs/architecture.md §6): "user U's feed reached head H".

A write commits in the database, the truth; the instance that made it publishes its rows to its
own streams at once (:class:`server.feed.FeedHub`) and one poke per affected user to the others.
An instance listens to a user's channel exactly while it holds a stream of that user; a poke
makes those streams read their feed from storage. A poke carries no data, so a lost one costs
only time: every stream reads its head at each heartbeat anyway.

:class:`NoPokes` is the single-instance default. :class:`RedisPokes` uses Redis ``PUBLISH`` on a
channel per user (``<prefix><user id>``, payload ``<epoch>:<head>``): O(subscribers) per publish,
no global lock, any number of instances. Publishes are queued and sent by one task in pipelines,
so a burst costs one round trip and a user written twice in a burst is poked once, with the
later head. A Redis outage fails no write: publishes are dropped (and counted) until it returns,
the subscriber reconnects with backoff and resubscribes every channel.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Protocol

OnPoke = Callable[[int, int], None]  # (user id, head)
OnWatching = Callable[[int], None]  # (user id): its channel is listened to (again) from now on
PREFIX = "concord:feed:"


class Pokes(Protocol):
    """The small interface the server needs from a poke bus (Redis, or nothing)."""

    async def start(
        self, epoch: int, on_poke: OnPoke, on_watching: OnWatching | None = None
    ) -> None:
        """``on_watching(user)`` once Redis confirms a subscription (also after a reconnect):
        a write committed before then was poked to nobody here, so the caller re-reads that
        user's head instead of waiting for a heartbeat."""

    def publish(self, heads: Mapping[int, int]) -> None:
        """After commit: queue a poke for each user's new head (never blocks, never fails)."""

    def watch(self, user_id: int) -> None:
        """This instance holds a stream of ``user_id`` now (called on the first one)."""

    def unwatch(self, user_id: int) -> None:
        """This instance's last stream of ``user_id`` closed."""

    async def close(self) -> None: ...


class NoPokes:
    """One instance: its hub already told its own streams; nobody else to poke."""

    async def start(
        self, epoch: int, on_poke: OnPoke, on_watching: OnWatching | None = None
    ) -> None:
        return None

    def publish(self, heads: Mapping[int, int]) -> None:
        return None

    def watch(self, user_id: int) -> None:
        return None

    def unwatch(self, user_id: int) -> None:
        return None

    async def close(self) -> None:
        return None


def pokes_for(url: str | None, prefix: str = PREFIX) -> Pokes:
    """``--redis URL`` (or ``CONCORD_REDIS_URL``): Redis pokes; none: a single instance."""
    if not url:
        return NoPokes()
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("--redis wants a redis://, rediss:// or unix:// URL")
    try:
        module = importlib.import_module("server.pokes_redis")
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(f"--redis needs pip install 'concord[scale]': {exc}") from None
    pokes: Pokes = module.RedisPokes(url, prefix=prefix)
    return pokes


__all__ = ["PREFIX", "NoPokes", "OnPoke", "OnWatching", "Pokes", "pokes_for"]
