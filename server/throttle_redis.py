"""The sign-in throttle shared by every instance through Redis (``--redis``, ``concord[scale]``).

Loaded by name (``server.app``) only when ``--redis`` is given: the desktop app, its bundle and
a plain install never import redis. ``redis_client`` makes the client both shared limits use.
"""

from __future__ import annotations

import itertools
import logging
import secrets
from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.asyncio import Redis

from .metrics import Metrics
from .redis_outage import RedisOutage
from .throttle import WINDOW_S, MemoryThrottle, Reservation, Throttled

log = logging.getLogger(__name__)


def redis_client(url: str) -> Redis:
    """A client for the shared limits (``--redis``), with short timeouts: a Redis that does not
    answer delays a sign-in or a stream's open by at most about two seconds, then the limits
    fall back to this instance's for a second."""
    return aioredis.Redis.from_url(
        url, socket_connect_timeout=1.0, socket_timeout=2.0, health_check_interval=30
    )


# Sliding windows in Redis: one sorted set per key (members are reservations, scores their time
# in ms by Redis' clock, so instances' clocks need not agree). Everything of one ``reserve`` runs
# in one script: Redis runs a script alone, so concurrent sign-ins on any number of instances
# cannot both see a free slot, and a reservation takes a slot under every key or under none.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local full, wait = false, 0
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local limit = tonumber(ARGV[i + 2])
  local n = redis.call('ZCARD', key)
  if n >= limit then
    full = true
    local w = window
    if limit > 0 then
      local oldest = redis.call('ZRANGE', key, n - limit, n - limit, 'WITHSCORES')
      w = tonumber(oldest[2]) + window - now
    end
    wait = math.max(wait, w, 1)
  end
end
if full then return {0, wait} end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[2])
  redis.call('PEXPIRE', key, window)
end
return {1, now}
"""

THROTTLE_PREFIX = "concord:throttle:"


class RedisThrottle:
    """``Throttle`` shared by every instance through Redis (``--redis``; ``concord[scale]``).

    Memory in Redis is bounded without a table: a window expires a minute after its last slot and
    holds at most its limit, and every slot is a password check, so the keys are at most two per
    check made in the last minute. A known pair is a key with a TTL (``known_ttl_s``).

    Redis unreachable: this instance falls back to its own ``MemoryThrottle`` (its limits, the
    Step 9 ones, hold per instance meanwhile) for ``retry_s`` before trying Redis again; each
    such decision is counted in ``concord_shared_limits_fallbacks_total{limit="sign_in"}`` and
    the first of an outage logged. Neither open (unlimited guesses) nor closed (nobody signs in
    while the poke bus is away).
    """

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = THROTTLE_PREFIX,
        window_s: float = WINDOW_S,
        known_ttl_s: float = 90 * 86400,
        retry_s: float = 1.0,
        local: MemoryThrottle | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.window_s = window_s
        self.known_ttl_s = known_ttl_s
        self.local = local or MemoryThrottle(window_s=window_s, metrics=metrics)
        self.outage = RedisOutage(
            "sign_in",
            log,
            (
                "sign-in throttle: Redis unreachable, limits per instance",
                "sign-in throttle: Redis is back, limits shared again",
            ),
            retry_s,
            metrics,
        )
        self._script = client.register_script(_RESERVE)
        self._name = secrets.token_hex(6)
        self._counter = itertools.count()

    @property
    def fallbacks(self) -> int:
        """Decisions taken by ``local`` because Redis was unreachable."""
        return self.outage.fallbacks

    def _key(self, key: str) -> str:
        return self.prefix + key

    async def reserve(self, limits: Sequence[tuple[str, int]]) -> Reservation:
        if self.outage.up():
            token = f"{self._name}:{next(self._counter)}"
            try:
                ok, value = await self._script(
                    keys=[self._key(key) for key, _ in limits],
                    args=[int(self.window_s * 1000), token, *(limit for _, limit in limits)],
                )
            except Exception as exc:  # redis.exceptions.RedisError, OSError: Redis is away
                self.outage.failed(exc)
            else:
                self.outage.answered()
                if not ok:
                    raise Throttled(int(value) / 1000)
                return Reservation(tuple(key for key, _ in limits), int(value) / 1000, token)
        self.outage.fell_back()
        return await self.local.reserve(limits)

    async def refund(self, reservation: Reservation) -> None:
        if not reservation.token:
            await self.local.refund(reservation)
            return
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for key in reservation.keys:
                    pipe.zrem(self._key(key), reservation.token)
                await pipe.execute()
        except Exception as exc:  # the slot stays taken until its minute passes
            self.outage.failed(exc)

    async def remember(self, key: str) -> None:
        await self.local.remember(key)
        if self.outage.up():
            try:
                await self.client.set(self._key(key), b"1", ex=int(self.known_ttl_s))
            except Exception as exc:
                self.outage.failed(exc)

    async def known(self, key: str) -> bool:
        if self.outage.up():
            try:
                return bool(await self.client.exists(self._key(key)))
            except Exception as exc:
                self.outage.failed(exc)
        return await self.local.known(key)


__all__ = ["THROTTLE_PREFIX", "RedisThrottle", "redis_client"]
