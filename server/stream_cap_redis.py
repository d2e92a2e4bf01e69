"""The per-user stream cap over every instance, through Redis (``--redis``, ``concord[scale]``).

Loaded by name (``server.app``) only when ``--redis`` is given: the desktop app, its bundle and
a plain install never import redis. Keys: a hash per user (``<prefix>user:<id>``: instance id →
streams held there) and a sorted set of live instances (``<prefix>instances``: instance id →
deadline in Redis' clock, pushed three heartbeats ahead at every heartbeat). A script checks and
increments in one step, counting only live instances, so a crashed instance's streams stop
counting within three heartbeats and its fields are dropped by the next check of that user. All
of an instance's writes go through one task, in order, in pipelines: a burst of opens costs one
round trip, and an exact count written after an outage cannot overtake an increment sent before
it.

Redis unreachable: the cap holds per instance (this instance's own count against the cap; the
decision is counted in ``concord_shared_limits_fallbacks_total{limit="streams"}``, the first of
an outage logged), and the instance's exact counts are written back once Redis answers again.
A stream is never refused because Redis is away: the cap protects the servers' memory, which a
per-instance cap still does, not a secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from .background import STOP_TIMEOUT_S, stop_tasks
from .metrics import Metrics
from .redis_outage import RedisOutage
from .stream_cap import Lease, too_many_streams

log = logging.getLogger(__name__)

PREFIX = "concord:streams:"
BATCH = 1000  # commands per pipeline (a reconnect storm is sent in rounds of this many)


_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""
# KEYS: the user's hash, the live instances. ARGV: me, limit, liveness ms, hash TTL ms.
# Returns {taken (0/1), total counted, lost (1: this instance had been given up for dead)}.
_ACQUIRE = (
    _NOW
    + """
local me = ARGV[1]
local mine = redis.call('ZSCORE', KEYS[2], me)
local lost = 0
if not mine or tonumber(mine) < now then lost = 1 end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), me)
local fields = redis.call('HGETALL', KEYS[1])
local total = 0
for i = 1, #fields, 2 do
  local inst, n = fields[i], tonumber(fields[i + 1])
  local live = inst == me
  if not live then
    local deadline = redis.call('ZSCORE', KEYS[2], inst)
    live = deadline and tonumber(deadline) >= now
  end
  if live and n > 0 then total = total + n else redis.call('HDEL', KEYS[1], inst) end
end
if total >= tonumber(ARGV[2]) then return {0, total, lost} end
redis.call('HINCRBY', KEYS[1], me, 1)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {1, total + 1, lost}
"""
)
_RELEASE = """
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
"""
# KEYS: the user's hash. ARGV: me, this instance's exact count, hash TTL ms.
_SET = """
if tonumber(ARGV[2]) > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
else
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""
# KEYS: the live instances. ARGV: me, liveness ms. Returns 1 if this instance had been lost.
_ALIVE = (
    _NOW
    + """
local mine = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
if not mine or tonumber(mine) < now then return 1 end
return 0
"""
)

Queued = Callable[[Pipeline], object]  # adds exactly one command to the pipeline


class _Op:
    __slots__ = ("add", "future", "user_id")

    def __init__(self, user_id: int | None, add: Queued, want: bool) -> None:
        self.user_id = user_id
        self.add = add
        self.future: asyncio.Future[Any] | None = (
            asyncio.get_running_loop().create_future() if want else None
        )


class RedisStreamCap:
    """The cap over every live instance, through Redis (``redis.asyncio``, ``concord[scale]``)."""

    def __init__(
        self,
        client: Redis,
        limit: int = 16,
        *,
        heartbeat_s: float = 15.0,
        prefix: str = PREFIX,
        hash_ttl_s: float = 86400.0,
        retry_s: float = 1.0,
        metrics: Metrics | None = None,
    ) -> None:
        self.client = client
        self.limit = limit
        self.heartbeat_s = heartbeat_s
        self.live_ms = int(3 * heartbeat_s * 1000)  # a silent instance counts this long
        self.prefix = prefix
        self.hash_ttl_ms = int(hash_ttl_s * 1000)  # garbage bound; streams end long before
        self.outage = RedisOutage(
            "streams",
            log,
            (
                "stream cap: Redis unreachable, the cap holds per instance",
                "stream cap: Redis is back, the cap is shared again",
            ),
            retry_s,
            metrics,
        )
        self.instance = secrets.token_hex(8)
        self.instances_key = f"{prefix}instances"
        self._counts: dict[int, int] = {}  # this instance's streams (and opens in flight)
        self._dirty: set[int] = set()  # users whose count in Redis may be wrong
        self._ops: list[_Op] = []
        self._queued = asyncio.Event()
        self._flushes = 0  # exact counts written so far (see acquire)
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def fallbacks(self) -> int:
        """Opens decided on this instance's count alone."""
        return self.outage.fallbacks

    def user_key(self, user_id: int) -> str:
        return f"{self.prefix}user:{user_id}"

    def count(self, user_id: int) -> int:
        return self._counts.get(user_id, 0)

    # --- life -----------------------------------------------------------------------------------

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._writer(), name="stream-cap-writer"),
            asyncio.create_task(self._alive(), name="stream-cap-alive"),
        ]

    async def close(self) -> None:
        """Stop; this instance's streams stop counting at once (a shutdown says ``bye``)."""
        await stop_tasks(self._tasks, "stream cap")
        self._tasks = []
        with contextlib.suppress(Exception):
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await self.client.zrem(self.instances_key, self.instance)

    # --- the cap --------------------------------------------------------------------------------

    async def acquire(self, user_id: int) -> Lease:
        held = self._counts.get(user_id, 0)
        if held >= self.limit:
            raise too_many_streams()  # this instance alone holds the cap already
        self._counts[user_id] = held + 1  # in flight: a concurrent open here sees it
        if self.outage.up():
            key = self.user_key(user_id)
            args = (self.instance, self.limit, self.live_ms, self.hash_ttl_ms)

            def add(pipe: Pipeline) -> object:
                return pipe.eval(_ACQUIRE, 2, key, self.instances_key, *args)

            flushes = self._flushes
            try:
                result = await self._submit(user_id, add)
            except asyncio.CancelledError:  # the open was abandoned; Redis may count it
                self._uncount(user_id)
                self._dirty.add(user_id)
                raise
            if result is not None:
                taken, _total, lost = (int(v) for v in result)
                if lost:  # given up for dead (a long pause): write every count again
                    self._dirty.update(self._counts)
                if not taken:
                    self._uncount(user_id)
                    if self._flushes != flushes:  # a count written meanwhile included this one
                        self._dirty.add(user_id)
                if self._dirty:
                    self._flush_dirty()
                if not taken:
                    raise too_many_streams()
                return Lease(user_id, self._release)
        self._fallback(user_id)
        return Lease(user_id, self._release)

    def _release(self, user_id: int) -> None:
        self._uncount(user_id)
        if not self.outage.up() or user_id in self._dirty:
            self._dirty.add(user_id)
            return
        key = self.user_key(user_id)

        def add(pipe: Pipeline) -> object:
            return pipe.eval(_RELEASE, 1, key, self.instance)

        self._enqueue(_Op(user_id, add, want=False))

    def _uncount(self, user_id: int) -> None:
        held = self._counts.get(user_id, 0) - 1
        if held > 0:
            self._counts[user_id] = held
        else:
            self._counts.pop(user_id, None)

    # --- Redis ----------------------------------------------------------------------------------

    def _fallback(self, user_id: int) -> None:
        self._dirty.add(user_id)
        self.outage.fell_back()

    def _enqueue(self, op: _Op) -> None:
        self._ops.append(op)
        self._queued.set()

    async def _submit(self, user_id: int | None, add: Queued) -> Any:
        """Run one command through the writer; None if Redis did not answer."""
        op = _Op(user_id, add, want=True)
        self._enqueue(op)
        assert op.future is not None
        return await op.future

    def _flush_dirty(self) -> None:
        """Queue this instance's exact count for every user it may be wrong for."""
        dirty, self._dirty = self._dirty, set()
        self._flushes += 1
        for user_id in sorted(dirty):
            key, held = self.user_key(user_id), self._counts.get(user_id, 0)

            def add(pipe: Pipeline, key: str = key, held: int = held) -> object:
                return pipe.eval(_SET, 1, key, self.instance, held, self.hash_ttl_ms)

            self._enqueue(_Op(user_id, add, want=False))

    async def _writer(self) -> None:
        while True:
            await self._queued.wait()
            self._queued.clear()
            batch, self._ops = self._ops[:BATCH], self._ops[BATCH:]
            if self._ops:
                self._queued.set()
            if not batch:
                continue
            try:
                async with self.client.pipeline(transaction=False) as pipe:
                    for op in batch:
                        op.add(pipe)
                    results = await pipe.execute(raise_on_error=False)
            except Exception as exc:  # redis.exceptions.RedisError, OSError: Redis is away
                self.outage.failed(exc)
                results = [exc] * len(batch)
            for op, result in zip(batch, results, strict=False):
                failed = isinstance(result, Exception)
                if failed and op.user_id is not None:
                    self._dirty.add(op.user_id)  # its effect is unknown: rewrite the count
                if op.future is not None and not op.future.done():
                    op.future.set_result(None if failed else result)

    async def _alive(self) -> None:
        """Every heartbeat: push this instance's deadline; after an outage (or having been
        given up for dead), write its exact counts."""
        while True:

            def add(pipe: Pipeline) -> object:
                return pipe.eval(_ALIVE, 1, self.instances_key, self.instance, self.live_ms)

            lost = await self._submit(None, add)
            if lost is not None:
                self.outage.answered()
                if int(lost):
                    self._dirty.update(self._counts)
                if self._dirty:
                    self._flush_dirty()
            await asyncio.sleep(self.heartbeat_s)


__all__ = ["PREFIX", "RedisStreamCap"]
