"""Sign-in throttling: a slot is reserved *before* the password is checked.

``Throttle`` is the seam for Step 10: ``MemoryThrottle`` holds the limits of one instance; a
shared implementation (the same two calls against a store every instance sees) makes them hold
for the whole deployment. ``SignInGuard`` decides which keys a sign-in is counted under.
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

WINDOW_S = 60.0


@dataclass(frozen=True)
class Reservation:
    """Slots taken under ``keys`` at ``at``; given back by ``Throttle.refund``."""

    keys: tuple[str, ...]
    at: float


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
    """In-process ``Throttle``: an LRU of at most ``max_keys`` windows.

    Each call runs to completion without awaiting, so concurrent requests cannot both see a
    free slot. Only windows whose minute has passed are evicted; when every tracked key is
    still active a *new* key is refused (fail closed) rather than any counter forgotten.
    """

    def __init__(
        self,
        max_keys: int = 100_000,
        window_s: float = WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_keys = max_keys
        self.window_s = window_s
        self.clock = clock
        self._windows: OrderedDict[str, deque[float]] = OrderedDict()
        self._known: OrderedDict[str, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._windows)

    def _window(self, key: str, now: float, adding: int, busy: set[str]) -> deque[float] | float:
        """The key's live attempts (expired ones dropped), or, when a new key finds no room,
        the seconds until the least recently used window has passed."""
        window = self._windows.get(key)
        if window is None:
            if len(self._windows) + adding >= self.max_keys:
                # The least recently used window that this call does not use itself.
                lru = next(((k, w) for k, w in self._windows.items() if k not in busy), None)
                if lru is None:
                    return self.window_s
                oldest_key, oldest = lru
                if oldest and now - oldest[-1] < self.window_s:
                    # Every tracked key is active: forget none of them.
                    return self.window_s - (now - oldest[-1])
                del self._windows[oldest_key]
            return deque()
        while window and now - window[0] >= self.window_s:
            window.popleft()
        return window

    async def reserve(self, limits: Sequence[tuple[str, int]]) -> Reservation:
        now = self.clock()
        windows: list[tuple[str, deque[float]]] = []
        busy = {key for key, _ in limits}
        wait = 0.0
        for key, limit in limits:
            adding = sum(1 for k, _ in windows if k not in self._windows)
            window = self._window(key, now, adding, busy)
            if isinstance(window, float):
                wait = max(wait, window)
            elif len(window) >= limit:
                wait = max(wait, self.window_s - (now - window[-limit]) if limit else self.window_s)
            else:
                windows.append((key, window))
        if wait > 0 or len(windows) < len(limits):
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
