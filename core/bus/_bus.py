"""``LocalBus``: one member of a scope's bus (this process's view of it)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import Callable
from time import monotonic_ns
from typing import Any

from . import _frames as F
from ._channel import NO_COPY, BroadcastChannel, Dispatcher
from ._errors import DataCloneError, InvalidStateError
from ._runtime import ScopePaths, resolve
from ._session import Session
from ._state import Provider, StateBroker
from ._transport import make_transport

log = logging.getLogger(__name__)

BUS_EVENTS = ("leader_changed", "gap", "members_changed")
MAX_SEEN = 4096
CLOCK_WINDOW_NS = 10_000_000_000
NO_FILTER = 1 << 62


class LocalBus:
    """A member of the bus of one scope (profile). Use ``await LocalBus.open(scope)``.

    ``LocalBus(scope)`` (inside a running loop) gives an in-process-only bus without a warning.
    """

    def __init__(self, scope: str = "", *, _cross_process: bool = False) -> None:
        self.scope = scope
        self.member_id = f"{os.getpid():x}-{secrets.token_hex(4)}"
        self.paths: ScopePaths | None = None
        self._loop = asyncio.get_running_loop()
        self._channels: dict[str, tuple[BroadcastChannel, ...]] = {}
        self._dispatch = Dispatcher(self._loop)
        self._listeners: dict[str, tuple[Callable[..., object], ...]]
        self._listeners = dict.fromkeys(BUS_EVENTS, ())
        self._session: Session | None = None
        self._degraded = not _cross_process
        self._closed = False
        self._next_id = 0
        self._epoch = 0
        self._max_epoch = 0
        self._leader_id: str | None = None
        self._announced: tuple[int, str | None] = (0, None)
        self._pos_epoch = 0  # (epoch, seq) of the last hub frame processed
        self._pos_seq = 0
        self._seen: dict[str, int] = {}  # sender member -> last message id delivered
        self._member_info: list[F.Member] = []
        self._state = StateBroker(self)
        self._changed = asyncio.Event()
        self._gap_pending = False

    @classmethod
    async def open(
        cls,
        scope: str,
        runtime_dir: str | os.PathLike[str] | None = None,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> LocalBus:
        """Join the scope's bus; lead it if nobody does. Never raises for an unusable runtime
        directory: the bus then works in-process only (``cross_process`` False, one warning)."""
        bus = cls(scope, _cross_process=True)
        try:
            bus.paths = resolve(scope, runtime_dir)
        except OSError as exc:
            bus._degrade(str(exc))
            return bus
        bus._session = Session(bus, bus.paths, make_transport(bus.paths.address))
        bus._session.start()
        try:
            await bus._wait_for(lambda: bus._session is None or bus._session.connected, timeout)
        except TimeoutError:
            log.info("bus: no hub reachable yet; still trying in the background")
        return bus

    # --- public state -------------------------------------------------------------------------

    @property
    def cross_process(self) -> bool:
        return not self._degraded

    @property
    def is_leader(self) -> bool:
        if self._closed:
            return False
        session = self._session
        return self._degraded if session is None else session.hub is not None

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def leader_id(self) -> str | None:
        if self._degraded:
            return None if self._closed else self.member_id
        return self._leader_id

    @property
    def closed(self) -> bool:
        return self._closed

    def members(self) -> list[str]:
        """Member ids on the bus, leader first (just this member while the hub is changing)."""
        if not self._member_info:
            return [self.member_id]
        return [m.m for m in self._member_info]

    def add_listener(self, event: str, callback: Callable[..., object]) -> Callable[[], None]:
        """``leader_changed(epoch, leader_id)``, ``gap(epoch, seq)``, ``members_changed(ids)``.

        Returns a callable that removes the listener. Callbacks run from the event loop.
        """
        if event not in BUS_EVENTS:
            raise ValueError(f"unknown bus event {event!r}; expected one of {BUS_EVENTS}")
        self._listeners[event] = (*self._listeners[event], callback)

        def remove() -> None:
            self._listeners[event] = tuple(c for c in self._listeners[event] if c is not callback)

        return remove

    # --- leadership ---------------------------------------------------------------------------

    async def step_down(self, timeout: float = 3.0) -> None:  # noqa: ASYNC109
        """Hand leadership to another member (no-op if not leader or nobody else is there)."""
        session = self._session
        if session is None or session.hub is None or not session.hub.conns:
            return
        old = self._epoch
        session.stop_leading(holdoff=True)
        with contextlib.suppress(TimeoutError):
            await self._wait_for(lambda: self._epoch > old and self._leader_id is not None, timeout)

    async def force_leader(self, timeout: float = 5.0) -> bool:  # noqa: ASYNC109
        """Ask the current leader to hand over to this member; True once this member leads."""
        session = self._session
        if session is None or session.hub is not None:
            return self.is_leader
        session.holdoff_until = 0.0
        session.send_control(F.Yield(e=0, v=F.VERSION))
        with contextlib.suppress(TimeoutError):
            await self._wait_for(lambda: self.is_leader, timeout)
        return self.is_leader

    # --- state handshake ----------------------------------------------------------------------

    def set_state_provider(self, name: str, fn: Provider | None) -> None:
        """Answer state requests for ``name`` with ``fn()`` (a JSON value, or an awaitable of
        one); ``None`` unregisters."""
        self._state.set_provider(name, fn)

    async def request_state(
        self,
        name: str,
        timeout: float = 2.0,  # noqa: ASYNC109
    ) -> tuple[Any, int] | None:
        """``(snapshot, seq)`` from the best provider of ``name``, or None (none/timeout/error).

        The snapshot reflects every bus message with ``seq <= seq``; later ones follow as usual.
        """
        if self._closed:
            raise InvalidStateError("bus is closed")
        return await self._state.request(name, timeout)

    # --- lifecycle ----------------------------------------------------------------------------

    async def close(self) -> None:
        """Close every channel, deliver what is queued (bounded wait), leave the bus."""
        if self._closed:
            return
        self._closed = True
        for chans in list(self._channels.values()):
            for ch in chans:
                ch._closed = True
        self._channels.clear()
        self._dispatch.clear()
        self._state.cancel_all()
        session = self._session
        if session is not None:
            await session.close()
        self._notify_changed()

    async def __aenter__(self) -> LocalBus:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        role = "leader" if self.is_leader else "follower"
        mode = "cross-process" if self.cross_process else "in-process"
        return f"<LocalBus {self.member_id} {role} epoch={self._epoch} {mode}>"

    # --- channels and messages (internal) -----------------------------------------------------

    def _attach(self, ch: BroadcastChannel) -> None:
        if self._closed:
            raise InvalidStateError("bus is closed")
        self._channels[ch._name] = (*self._channels.get(ch._name, ()), ch)

    def _detach(self, ch: BroadcastChannel) -> None:
        rest = tuple(c for c in self._channels.get(ch._name, ()) if c is not ch)
        if rest:
            self._channels[ch._name] = rest
        else:
            self._channels.pop(ch._name, None)

    def _post(self, ch: BroadcastChannel, data: Any) -> None:
        if self._closed:
            raise InvalidStateError("bus is closed")
        raw, copy = F.encode_data(data)
        if len(raw) + len(ch._name_json) > F.MAX_DATA:
            raise DataCloneError(f"message too large: {len(raw)} bytes of data (max {F.MAX_DATA})")
        t = monotonic_ns()
        mid = self._next_id = self._next_id + 1
        seq = None
        session = self._session
        if session is not None:
            hub = session.hub
            if hub is not None:
                seq = hub.publish_local(ch._name_json, mid, t, raw)
            else:
                session.queue_post(mid, F.post_body(ch._name_json, mid, t, raw))
        receivers = self._channels.get(ch._name)
        if receivers is not None and (len(receivers) > 1 or receivers[0] is not ch):
            self._dispatch.push((receivers, ch, raw, copy, seq, self.member_id, None, t))

    def _receive(self, src: str, mid: int, name: str, raw: Any, seq: int, t: int) -> None:
        """A message from another process (already sequenced by the hub)."""
        if src == self.member_id:
            return
        seen = self._seen
        last = seen.get(src)
        if last is not None:
            if mid <= last:
                return  # resent after a failover; already delivered
            if mid != last + 1:
                self._gap(seq)  # the sender dropped queued messages
        elif len(seen) >= MAX_SEEN:
            del seen[next(iter(seen))]
        seen[src] = mid
        receivers = self._channels.get(name)
        if receivers is not None:
            if monotonic_ns() - t > CLOCK_WINDOW_NS:
                # Posted long ago (or on a clock not shared with ours, e.g. another time
                # namespace): don't filter receivers by post time rather than risk losing it.
                t = NO_FILTER
            try:
                copy = F.decode_json(raw)  # validate once; the first receiver gets this copy
            except Exception as exc:
                self._gap(seq)
                self._dispatch.deliver_or_push(
                    (receivers, None, None, NO_COPY, seq, src, f"undecodable data: {exc}", t)
                )
                return
            self._dispatch.deliver_or_push((receivers, None, raw, copy, seq, src, None, t))

    def _message_error(self, name: str, seq: int | None, src: str | None, error: str) -> None:
        receivers = self._channels.get(name)
        if receivers is not None:
            self._dispatch.push((receivers, None, None, NO_COPY, seq, src, error, monotonic_ns()))

    def _on_control(self, f: F.RoutedRequest | F.RoutedReply) -> None:
        if isinstance(f, F.RoutedRequest):
            self._state.on_request(f)
        elif isinstance(f, F.RoutedReply):
            self._state.on_reply(f)

    # --- membership / leadership bookkeeping (called by the session and hub) -----------------

    def _became_leader(self, epoch: int) -> None:
        self._epoch = self._max_epoch = self._pos_epoch = epoch
        # Called by Session._lead right after it set session.hub: neither is None here.
        self._session.hub.members_changed()  # type: ignore[union-attr]
        self._notify_changed()

    def _lost_leadership(self) -> None:
        self._member_info = []
        self._leader_id = None
        self._notify_changed()

    def _link_lost(self) -> None:
        self._member_info = []
        self._leader_id = None
        self._state.cancel_all()
        self._notify_changed()

    def _set_members(self, leader: str, ms: list[F.Member]) -> None:
        changed = [m.m for m in ms] != [m.m for m in self._member_info]
        self._member_info = ms
        self._leader_id = leader
        if (self._epoch, leader) != self._announced:
            self._announced = (self._epoch, leader)
            self._emit("leader_changed", self._epoch, leader)
        if changed:
            self._emit("members_changed", self.members())
            self._notify_changed()

    def _degrade(self, reason: str) -> None:
        if self._degraded:
            return
        self._degraded = True
        log.warning("bus: cross-process delivery unavailable (%s); in-process only", reason)
        session, self._session = self._session, None
        if session is not None:
            session.lock.close()
        self._emit("leader_changed", 0, self.member_id)
        self._notify_changed()

    def _gap(self, seq: int) -> None:
        if not self._gap_pending:
            self._gap_pending = True
            self._loop.call_soon(self._fire_gap, self._epoch, seq)

    def _fire_gap(self, epoch: int, seq: int) -> None:
        self._gap_pending = False
        self._call("gap", epoch, seq)

    def _emit(self, event: str, *args: Any) -> None:
        if self._listeners[event]:
            self._loop.call_soon(self._call, event, *args)

    def _call(self, event: str, *args: Any) -> None:
        for cb in self._listeners[event]:
            try:
                cb(*args)
            except Exception:
                log.exception("bus: %s listener raised", event)

    def _notify_changed(self) -> None:
        ev, self._changed = self._changed, asyncio.Event()
        ev.set()

    async def _wait_for(self, pred: Callable[[], bool], seconds: float) -> None:
        """Wait until ``pred()`` (re-checked on every state change); TimeoutError after
        ``seconds``."""
        deadline = self._loop.time() + seconds
        while not pred():
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                raise TimeoutError
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._changed.wait()
