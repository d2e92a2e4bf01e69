"""Sign-in throttling: a slot is reserved *before* the password is checked.

``Throttle`` is the seam: ``MemoryThrottle`` holds the limits of one instance (the default);
``server.throttle_redis.RedisThrottle`` (``--redis``) keeps the same windows in Redis, so the
limits hold for the whole deployment. ``SignInGuard`` decides which keys a sign-in is counted under.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from starlette.requests import Request

from .errors import RequestRejected
from .metrics import Metrics

WINDOW_S = 60.0


@dataclass(frozen=True)
class Reservation:
    """Slots taken under ``keys`` at ``at``; given back by ``Throttle.refund``."""

    keys: tuple[str, ...]
    at: float
    token: str = ""  # the slots' name in a shared store ("": held in this process)


class Throttled(Exception):
    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"throttled for {retry_after_s:.1f} s")
        self.retry_after_s = retry_after_s


class Throttle(Protocol):
    """Sliding-window limits per key. ``reserve`` takes one slot under every key, or none."""

    async def reserve(self, limits: Sequence[tuple[str, int]]) -> Reservation:
        """Take a slot under each ``(key, limit)``; raise ``Throttled`` if any is full."""
        ...

    async def refund(self, reservation: Reservation) -> None:
        """Give the slots back (a successful sign-in is not a guess)."""
        ...

    async def remember(self, key: str) -> None:
        """Note ``key`` as known-good (a name signed in from this address before)."""
        ...

    async def known(self, key: str) -> bool: ...


class MemoryThrottle:
    """In-process ``Throttle``: at most ``max_keys`` windows, in order of their last attempt.

    Each call runs to completion without awaiting, so concurrent requests cannot both see a
    free slot. A new key that finds the table full makes room from the least recently touched
    end (the first ``scan`` windows): a window whose minute has passed (or that is empty) goes
    first; else the one holding the fewest live attempts, if that is at most
    ``evictable_attempts`` (forgetting it gives back at most that many guesses). Only when
    those windows all hold more is the new key refused (fail closed): a window near its limit
    is never forgotten while it is active, and nothing is ever cleared at once.
    """

    def __init__(
        self,
        max_keys: int = 100_000,
        window_s: float = WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
        *,
        evictable_attempts: int = 1,
        scan: int = 32,
        metrics: Metrics | None = None,
    ) -> None:
        self.max_keys = max_keys
        self.window_s = window_s
        self.clock = clock
        self.evictable_attempts = evictable_attempts
        self.scan = scan
        self.metrics = metrics
        self._windows: OrderedDict[str, deque[float]] = OrderedDict()
        self._known: OrderedDict[str, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._windows)

    def keys(self) -> list[str]:
        """The tracked keys, least recently touched first."""
        return list(self._windows)

    def _expire(self, window: deque[float], now: float) -> deque[float]:
        while window and now - window[0] >= self.window_s:
            window.popleft()
        return window

    def _victim(self, now: float, spare: set[str]) -> str | None:
        """The key to evict for a new one (never one in ``spare``), or None: no room."""
        best: tuple[int, str] | None = None
        looked = 0
        for key, window in self._windows.items():
            if key in spare:
                continue
            live = len(self._expire(window, now))
            if live == 0:
                return key
            if live <= self.evictable_attempts and (best is None or live < best[0]):
                best = (live, key)
            looked += 1
            if looked >= self.scan:
                break
        return None if best is None else best[1]

    def _make_room(self, new: int, now: float, busy: set[str]) -> float:
        """Evict for ``new`` keys, all or none: 0.0, or the seconds until the least recently
        touched window (other than ``busy``) has passed."""
        spare = set(busy)
        victims: list[str] = []
        while len(self._windows) - len(victims) + new > self.max_keys:
            victim = self._victim(now, spare)
            if victim is None:
                lru = next((w for k, w in self._windows.items() if k not in busy), None)
                if self.metrics is not None:
                    self.metrics.throttle_full.inc()
                return self.window_s - (now - lru[-1]) if lru else self.window_s
            victims.append(victim)
            spare.add(victim)
        for victim in victims:
            passed = not self._windows.pop(victim)
            if self.metrics is not None:
                self.metrics.throttle_evictions.labels("passed" if passed else "active").inc()
        return 0.0

    async def reserve(self, limits: Sequence[tuple[str, int]]) -> Reservation:
        now = self.clock()
        wait = 0.0
        windows: list[tuple[str, deque[float]]] = []
        for key, limit in limits:
            window = self._expire(self._windows.get(key, deque()), now)
            if len(window) >= limit:
                wait = max(wait, self.window_s - (now - window[-limit]) if limit else self.window_s)
            windows.append((key, window))
        if wait > 0:
            raise Throttled(wait)
        busy = {key for key, _ in limits}
        new = sum(1 for key in busy if key not in self._windows)
        if new and (wait := self._make_room(new, now, busy)) > 0:
            raise Throttled(max(wait, 0.001))
        for key, window in windows:
            window.append(now)
            self._windows[key] = window
            self._windows.move_to_end(key)
        return Reservation(tuple(key for key, _ in limits), now)

    async def refund(self, reservation: Reservation) -> None:
        for key in reservation.keys:
            window = self._windows.get(key)
            if window is not None and reservation.at in window:
                window.remove(reservation.at)

    async def remember(self, key: str) -> None:
        self._known[key] = None
        self._known.move_to_end(key)
        if len(self._known) > self.max_keys:
            self._known.popitem(last=False)  # that pair falls back to the shared name limit

    async def known(self, key: str) -> bool:
        return key in self._known


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_proxies(values: Sequence[str]) -> tuple[Network, ...]:
    """``--trusted-proxy`` values: addresses or networks (``10.0.0.0/8``)."""
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values)


def client_address(request: Request, proxies: Sequence[Network]) -> str:
    """The peer's address; behind a trusted proxy, the nearest untrusted ``X-Forwarded-For`` hop.

    ``X-Forwarded-For`` from anyone else is ignored: a client could write anything there.
    """
    peer = request.client.host if request.client else ""

    def trusted(addr: str) -> bool:
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            return False
        return any(ip in net for net in proxies)

    if not proxies or not trusted(peer):
        return peer
    hops = [h.strip() for v in request.headers.getlist("x-forwarded-for") for h in v.split(",")]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a garbled chain: trust none of it
        if not trusted(hop):
            return hop
    return hops[0] if hops else peer


class SignInGuard:
    """Which limits a sign-in counts against.

    Every password check takes a slot per address and one per name, before the check. A name
    signed in before from this address counts in a bucket of that pair instead of the shared
    per-name one, so a stranger's guesses from elsewhere cannot keep its owner out.
    """

    def __init__(
        self,
        throttle: Throttle,
        per_name: int,
        per_address: int,
        proxies: Sequence[Network] = (),
    ) -> None:
        self.throttle = throttle
        self.per_name = per_name
        self.per_address = per_address
        self.proxies = tuple(proxies)

    async def reserve(self, request: Request, username: str) -> tuple[Reservation, str]:
        """A reservation (and the pair key), or a 429 with ``Retry-After``."""
        address = client_address(request, self.proxies)
        pair = f"pair:{username}\x00{address}"
        name_key = pair if await self.throttle.known(pair) else f"name:{username}"
        try:
            reservation = await self.throttle.reserve(
                [(name_key, self.per_name), (f"addr:{address}", self.per_address)]
            )
        except Throttled as exc:
            raise RequestRejected(
                429,
                "too_many_attempts",
                "too many sign-in attempts; try again later",
                headers={"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))},
            ) from None
        return reservation, pair

    async def succeeded(self, reservation: Reservation, pair: str) -> None:
        await self.throttle.refund(reservation)
        await self.throttle.remember(pair)
