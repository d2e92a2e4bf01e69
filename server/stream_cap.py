"""The per-user stream cap (``max_streams_per_user``), for one instance or a deployment.

``GET events`` takes a :class:`Lease` before it subscribes (``await cap.acquire(user_id)``, a
``429 too_many_streams`` when the user holds the cap already) and gives it back when the stream
ends (``lease.release()``, idempotent, never blocks).

:class:`LocalStreamCap` counts this instance's streams: the single-instance default.
``server.stream_cap_redis.RedisStreamCap`` (``--redis``) counts every instance's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .errors import RequestRejected


def too_many_streams() -> RequestRejected:
    return RequestRejected(
        429,
        "too_many_streams",
        "too many open streams for this account",
        headers={"Retry-After": "10"},
    )


class Lease:
    """One stream's slot; ``release()`` gives it back (once, however often it is called)."""

    __slots__ = ("_release", "released", "user_id")

    def __init__(self, user_id: int, release: Callable[[int], None]) -> None:
        self.user_id = user_id
        self._release = release
        self.released = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self._release(self.user_id)


class StreamCap(Protocol):
    limit: int

    async def start(self) -> None: ...

    async def acquire(self, user_id: int) -> Lease:
        """A slot for one more stream of ``user_id``, or ``too_many_streams`` (429)."""
        ...

    def count(self, user_id: int) -> int:
        """The streams of ``user_id`` this instance holds."""
        ...

    async def close(self) -> None: ...


class LocalStreamCap:
    """One instance: its own count is the whole count. ``acquire`` never awaits, so concurrent
    opens cannot all pass."""

    def __init__(self, limit: int = 16) -> None:
        self.limit = limit
        self._counts: dict[int, int] = {}

    async def start(self) -> None:
        return None

    async def acquire(self, user_id: int) -> Lease:
        held = self._counts.get(user_id, 0)
        if held >= self.limit:
            raise too_many_streams()
        self._counts[user_id] = held + 1
        return Lease(user_id, self._release)

    def _release(self, user_id: int) -> None:
        held = self._counts.get(user_id, 0) - 1
        if held > 0:
            self._counts[user_id] = held
        else:
            self._counts.pop(user_id, None)

    def count(self, user_id: int) -> int:
        return self._counts.get(user_id, 0)

    async def close(self) -> None:
        return None


__all__ = ["Lease", "LocalStreamCap", "StreamCap", "too_many_streams"]
