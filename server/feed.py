"""In-memory fan-out of committed changes to the open SSE streams of this process.

The database is the source of truth; this hub only carries what was just committed so streams
need not poll. A stream that sees a gap (or a bare head poke, as a multi-instance deployment
sends) pulls the missing changes from storage. Each subscription's queue is bounded: past the
bound it is marked overflowed and emptied, and its stream ends with ``reset {reason: "slow"}``.
"""

from __future__ import annotations

import asyncio
from collections import deque

from .storage import StoredChange


def change_frame(epoch: int, change: StoredChange) -> bytes:
    """The SSE frame of one change; JSON from msgspec has no raw newlines, so one data line."""
    return b"event: change\nid: %d:%d\ndata: %s\n\n" % (epoch, change.seq, change.payload)


class Subscription:
    __slots__ = (
        "closed",
        "deadline",
        "known_head",
        "maxsize",
        "overflowed",
        "queue",
        "send_expired",
        "send_started",
        "send_task",
        "user_id",
        "wake",
    )

    def __init__(self, user_id: int, maxsize: int) -> None:
        self.user_id = user_id
        self.maxsize = maxsize
        self.queue: deque[tuple[int, bytes]] = deque()
        self.wake = asyncio.Event()
        self.overflowed = False
        self.closed = False
        self.known_head = 0
        self.deadline = float("inf")  # loop time at which the hub's ticker wakes this stream
        self.send_started: float | None = None  # a send to the client is in progress since
        self.send_task: asyncio.Task[object] | None = None
        self.send_expired = False

    def push(self, seq: int, frame: bytes) -> None:
        if self.overflowed:
            return
        if len(self.queue) >= self.maxsize:
            self.overflowed = True
            self.queue.clear()
        else:
            self.queue.append((seq, frame))
        self.known_head = max(self.known_head, seq)
        self.wake.set()

    def poke(self, head: int) -> None:
        if head > self.known_head:
            self.known_head = head
            self.wake.set()

    def take(self) -> list[tuple[int, bytes]]:
        items = list(self.queue)
        self.queue.clear()
        return items


class FeedHub:
    """Per-user sets of subscriptions, plus one ticker that wakes streams at their deadlines
    (heartbeat, reauth, expiry), so a waiting stream costs no timer of its own."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self._subs: dict[int, set[Subscription]] = {}
        self.shutting_down = False

    async def run_ticker(self, interval: float, send_timeout: float = float("inf")) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            now = loop.time()
            for subs in self._subs.values():
                for sub in subs:
                    if sub.deadline <= now:
                        sub.wake.set()
                    started = sub.send_started
                    if (
                        started is not None
                        and now - started > send_timeout
                        and not (sub.send_expired)
                    ):
                        sub.send_expired = True
                        if sub.send_task is not None:
                            sub.send_task.cancel()

    def subscribe(self, user_id: int, maxsize: int) -> Subscription:
        sub = Subscription(user_id, maxsize)
        self._subs.setdefault(user_id, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        sub.closed = True
        subs = self._subs.get(sub.user_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.user_id]

    def count(self, user_id: int) -> int:
        return len(self._subs.get(user_id, ()))

    @property
    def total(self) -> int:
        return sum(len(s) for s in self._subs.values())

    def publish(self, changes: list[StoredChange]) -> None:
        for change in changes:
            subs = self._subs.get(change.user_id)
            if subs:
                frame = change_frame(self.epoch, change)
                for sub in subs:
                    sub.push(change.seq, frame)

    def poke(self, user_id: int, head: int) -> None:
        for sub in self._subs.get(user_id, ()):
            sub.poke(head)

    def begin_shutdown(self) -> None:
        self.shutting_down = True
        for subs in self._subs.values():
            for sub in subs:
                sub.wake.set()


__all__ = ["FeedHub", "Subscription", "change_frame"]
