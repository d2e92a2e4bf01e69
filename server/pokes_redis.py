"""Pokes over Redis pub/sub (``redis.asyncio``, from the ``concord[scale]`` extra): the
multi-instance :class:`~server.pokes.Pokes`. Loaded by name (:func:`server.pokes.pokes_for`) so
that an app without ``--redis`` (the desktop's embedded server) never imports redis."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Mapping

import redis.asyncio as aioredis

from .background import stop_tasks
from .pokes import PREFIX, OnPoke, OnWatching

log = logging.getLogger(__name__)
READ_SLICE_S = 0.05  # a subscription change waits at most this long for a read to end


class RedisPokes:
    """Pokes over Redis pub/sub (``redis.asyncio``, from the ``concord[scale]`` extra)."""

    def __init__(self, url: str, *, prefix: str = PREFIX, max_backoff_s: float = 2.0) -> None:
        self.url = url
        self.prefix = prefix
        self.max_backoff_s = max_backoff_s
        self._redis = aioredis.Redis.from_url(
            url, socket_connect_timeout=2.0, socket_timeout=5.0, health_check_interval=30
        )
        self._pubsub = self._redis.pubsub()
        self._epoch = 0
        self._on_poke: OnPoke = lambda user_id, head: None
        self._on_watching: OnWatching | None = None
        self._pending: dict[int, int] = {}
        self._outgoing = asyncio.Event()
        self._wanted: set[int] = set()  # users with a stream here
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        # Counters for /metrics and the benchmarks.
        self.published = 0  # PUBLISH commands sent
        self.received = 0  # pokes received for a watched user
        self.dropped = 0  # pokes not published (Redis unreachable)
        self.errors = 0  # Redis errors met, all tasks together

    # --- life -----------------------------------------------------------------------------------

    async def start(
        self, epoch: int, on_poke: OnPoke, on_watching: OnWatching | None = None
    ) -> None:
        self._epoch, self._on_poke = epoch, on_poke
        self._on_watching = on_watching
        self._tasks = [
            asyncio.create_task(self._publisher(), name="pokes-publisher"),
            asyncio.create_task(self._listener(), name="pokes-listener"),
        ]

    async def close(self) -> None:
        await stop_tasks(self._tasks, "pokes")
        self._tasks = []
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()
        with contextlib.suppress(Exception):
            await self._redis.aclose()

    # --- the interface --------------------------------------------------------------------------

    def publish(self, heads: Mapping[int, int]) -> None:
        pending = self._pending
        for user_id, head in heads.items():
            if head > pending.get(user_id, -1):
                pending[user_id] = head
        if pending:
            self._outgoing.set()

    def watch(self, user_id: int) -> None:
        self._wanted.add(user_id)
        self._changed.set()

    def unwatch(self, user_id: int) -> None:
        self._wanted.discard(user_id)
        self._changed.set()

    def channel(self, user_id: int) -> str:
        return f"{self.prefix}{user_id}"

    @property
    def watching(self) -> frozenset[int]:
        """The users whose channels Redis has confirmed... or been asked for (tests, metrics)."""
        return frozenset(self._wanted)

    # --- tasks ----------------------------------------------------------------------------------

    def _backoff(self, failures: int) -> float:
        delay: float = min(self.max_backoff_s, 0.05 * 2.0**failures)
        return delay * random.uniform(0.5, 1.0)

    async def _publisher(self) -> None:
        failures = 0
        while True:
            await self._outgoing.wait()
            self._outgoing.clear()
            batch, self._pending = self._pending, {}
            if not batch:
                continue
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for user_id, head in batch.items():
                        pipe.publish(self.channel(user_id), f"{self._epoch}:{head}")
                    await pipe.execute()
                self.published += len(batch)
                failures = 0
            except Exception as exc:  # redis.exceptions.RedisError, OSError: Redis is away
                self.errors += 1
                self.dropped += len(batch)  # the streams' heartbeats will catch up
                if failures == 0:
                    log.warning("pokes not published (streams catch up at heartbeat): %s", exc)
                failures += 1
                await asyncio.sleep(self._backoff(failures))

    async def _listener(self) -> None:
        """The one task that touches the pub/sub connection (redis-py's asyncio pub/sub does
        not allow a subscribe while a read waits): bring Redis' subscriptions to the wanted
        set, in batches, then read for at most ``READ_SLICE_S`` and go round again."""
        failures = 0
        while True:
            if not self._pubsub.subscribed and not self._wanted:
                await self._changed.wait()  # nothing to listen to: nothing to read
            try:
                if self._changed.is_set():
                    self._changed.clear()
                    await self._sync_subscriptions()
                if not self._pubsub.subscribed:  # all dropped (or not yet sent): go round
                    if self._wanted:
                        self._changed.set()
                        await asyncio.sleep(READ_SLICE_S)
                    continue
                message = await self._pubsub.get_message(timeout=READ_SLICE_S)
                failures = 0
            except Exception as exc:
                # The next read reconnects and resubscribes every channel (redis-py's
                # on_connect); meanwhile streams catch up at their heartbeats.
                self.errors += 1
                if failures == 0:
                    log.warning("lost the poke subscription (reconnecting): %s", exc)
                failures += 1
                self._changed.set()  # whatever was not confirmed is sent again
                await asyncio.sleep(self._backoff(failures))
                continue
            if message is None:
                continue
            if message.get("type") == "message":
                self._deliver(message["channel"], message["data"])
            elif message.get("type") == "subscribe":
                self._confirmed(message["channel"])

    async def _sync_subscriptions(self) -> None:
        # A channel stays in ``channels`` until its unsubscribe is confirmed: not one we have.
        pending = self._pubsub.pending_unsubscribe_channels
        have = {
            int(c.decode()[len(self.prefix) :]) for c in self._pubsub.channels if c not in pending
        }
        add, drop = self._wanted - have, have - self._wanted
        if add:
            await self._pubsub.subscribe(*(self.channel(u) for u in sorted(add)))
        if drop:
            await self._pubsub.unsubscribe(*(self.channel(u) for u in sorted(drop)))

    def _confirmed(self, channel: bytes) -> None:
        """Redis listens for us now: what was committed before, nobody poked us about."""
        try:
            user_id = int(channel.decode()[len(self.prefix) :])
        except (ValueError, UnicodeDecodeError):
            return
        if user_id in self._wanted and self._on_watching is not None:
            self._on_watching(user_id)

    def _deliver(self, channel: bytes, data: bytes) -> None:
        try:
            user_id = int(channel.decode()[len(self.prefix) :])
            epoch, _, head = data.decode().partition(":")
            if int(epoch) != self._epoch:
                return  # another epoch's instance (mid-restore): its heads mean nothing here
            head_seq = int(head)
        except (ValueError, UnicodeDecodeError):
            self.errors += 1
            return
        if user_id in self._wanted:
            self.received += 1
            self._on_poke(user_id, head_seq)


__all__ = ["RedisPokes"]
