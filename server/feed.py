"""In-memory fan-out of committed changes to the open SSE streams of this process.

The database is the source of truth; this hub only carries what was just committed so streams
need not poll. A stream that sees a gap (or a bare head poke, as a multi-instance deployment
sends) pulls the missing changes from storage. Each subscription's queue is bounded: past the
bound it is marked overflowed and emptied, and its stream ends with ``reset {reason: "slow"}``.
"""

from __future__ import annotations

import asyncio
import heapq
from collections import deque

from .pokes import NoPokes, Pokes
from .storage import StoredChange

INF = float("inf")


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
        "revoked",
        "send_expired",
        "send_started",
        "send_task",
        "session",
        "user_id",
        "wake",
    )

    def __init__(self, user_id: int, maxsize: int, session: str = "") -> None:
        self.user_id = user_id
        self.session = session  # the credential's session: a revocation ends the stream
        self.revoked = False
        self.maxsize = maxsize
        self.queue: deque[tuple[int, bytes]] = deque()
        self.wake = asyncio.Event()
        self.overflowed = False
        self.closed = False
        self.known_head = 0
        self.deadline = INF  # loop time at which the hub's ticker wakes it (FeedHub.schedule)
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
    (heartbeat, reauth, expiry), so a waiting stream costs no timer of its own. The deadlines
    are a heap and only the streams with a send in progress are checked for its timeout: a
    tick costs what is due, not what is open (docs/architecture.md §4.7)."""

    def __init__(self, epoch: int, pokes: Pokes | None = None) -> None:
        self.epoch = epoch
        # Other instances' pokes: heard for exactly the users with a stream here.
        self.pokes: Pokes = pokes or NoPokes()
        self._subs: dict[int, set[Subscription]] = {}
        self._timers: list[tuple[float, int, Subscription]] = []  # (deadline, n, sub), a heap
        self._timer_count = 0
        self._sending: set[Subscription] = set()
        self.shutting_down = False

    @property
    def pending_wakes(self) -> int:
        """Entries in the deadline heap (a replaced deadline's stays until it comes up)."""
        return len(self._timers)

    @property
    def sends_in_progress(self) -> int:
        """Streams whose send the ticker times."""
        return len(self._sending)

    def schedule(self, sub: Subscription, deadline: float) -> None:
        """Wake ``sub`` at loop time ``deadline`` (within the ticker's interval). An entry
        whose deadline was replaced stays in the heap until due, then is skipped."""
        if deadline != sub.deadline:
            sub.deadline = deadline
            if deadline != INF:
                self._timer_count += 1
                heapq.heappush(self._timers, (deadline, self._timer_count, sub))

    def begin_send(self, sub: Subscription, task: asyncio.Task[object] | None, now: float) -> None:
        sub.send_task = task
        sub.send_started = now
        self._sending.add(sub)

    def end_send(self, sub: Subscription) -> None:
        sub.send_started = None
        self._sending.discard(sub)

    def tick(self, now: float, send_timeout: float = INF) -> None:
        """Wake the streams whose deadline has come; cancel sends blocked past ``send_timeout``."""
        timers = self._timers
        while timers and timers[0][0] <= now:
            when, _, sub = heapq.heappop(timers)
            if when == sub.deadline and not sub.closed:
                sub.deadline = INF
                sub.wake.set()
        if send_timeout == INF:
            return
        for sub in self._sending:
            started = sub.send_started
            if started is not None and now - started > send_timeout and not sub.send_expired:
                sub.send_expired = True
                if sub.send_task is not None:
                    sub.send_task.cancel()

    async def run_ticker(self, interval: float, send_timeout: float = INF) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            self.tick(loop.time(), send_timeout)

    def subscribe(self, user_id: int, maxsize: int, session: str = "") -> Subscription:
        sub = Subscription(user_id, maxsize, session)
        subs = self._subs.get(user_id)
        if subs is None:
            subs = self._subs[user_id] = set()
            self.pokes.watch(user_id)
        subs.add(sub)
        return sub

    def revoke(self, user_id: int | None, session: str | None) -> None:
        """End the streams of a revoked session (``session`` None: every stream of
        ``user_id``); each says ``expired`` and closes."""
        if session is None:
            targets = list(self._subs.get(user_id, ())) if user_id is not None else []
        else:
            targets = [s for subs in self._subs.values() for s in subs if s.session == session]
        for sub in targets:
            sub.revoked = True
            sub.wake.set()

    def unsubscribe(self, sub: Subscription) -> None:
        sub.closed = True
        subs = self._subs.get(sub.user_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.user_id]
                self.pokes.unwatch(sub.user_id)

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
