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

from ..signal import Signal
from . import _frames as F
from ._channel import NO_COPY, BroadcastChannel, Dispatcher
from ._errors import DataCloneError, InvalidStateError
from ._position import Position
from ._runtime import ScopePaths, resolve
from ._session import Session
from ._state import Provider, StateBroker
from ._transport import make_transport

log = logging.getLogger(__name__)

MAX_SEEN = 4096
CLOCK_WINDOW_NS = 10_000_000_000
NO_FILTER = 1 << 62


class LocalBus:
    """A member of the bus of one scope (profile). Use ``await LocalBus.open(scope)``.

    ``LocalBus(scope)`` (inside a running loop) gives an in-process-only bus without a warning.
    Bus events are signals (callbacks run from the loop, never inside the call that caused
    them): ``leader_changed(epoch, leader_id)``, ``members_changed(member_ids)`` and
    ``gap(epoch, seq)``. The "channels" and "machinery" sections are seams for
    ``BroadcastChannel`` and for ``BusPort`` (``_port.py``: what the session, hub, link and
    state broker use); applications don't call them.
    """

    def __init__(self, scope: str = "", *, _cross_process: bool = False) -> None:
        self.scope = scope
        self.member_id = f"{os.getpid():x}-{secrets.token_hex(4)}"
        self.paths: ScopePaths | None = None
        self.leader_changed: Signal[[int, str]] = Signal("leader_changed")
        self.members_changed: Signal[[list[str]]] = Signal("members_changed")
        self.gap: Signal[[int, int]] = Signal("gap")
        self._loop = asyncio.get_running_loop()
        self._channels: dict[str, tuple[BroadcastChannel, ...]] = {}
        self._dispatch = Dispatcher(self._loop)
        self._session: Session | None = None
        self._degraded = not _cross_process
        self._closed = False
        self._next_id = 0
        self._position = Position()
        self._leader_id: str | None = None
        self._announced: tuple[int, str | None] = (0, None)
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
            bus.degrade(str(exc))
            return bus
        bus._session = Session(bus, bus.paths, make_transport(bus.paths.address))
        bus._session.start()
        try:
            await bus.wait_for(lambda: bus._session is None or bus._session.connected, timeout)
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
        return self._position.epoch

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
        return [m.member for m in self._member_info]

    # --- leadership ---------------------------------------------------------------------------

    async def step_down(self, timeout: float = 3.0) -> None:  # noqa: ASYNC109
        """Hand leadership to another member (no-op if not leader or nobody else is there)."""
        session = self._session
        if session is None or session.hub is None or not session.hub.conns:
            return
        old = self._position.epoch
        session.stop_leading(holdoff=True)
        with contextlib.suppress(TimeoutError):
            await self.wait_for(
                lambda: self._position.epoch > old and self._leader_id is not None, timeout
            )

    async def force_leader(self, timeout: float = 5.0) -> bool:  # noqa: ASYNC109
        """Ask the current leader to hand over to this member; True once this member leads."""
        session = self._session
        if session is None or session.hub is not None:
            return self.is_leader
        session.holdoff_until = 0.0
        session.send_control(F.Yield(epoch=0, version=F.VERSION))
        with contextlib.suppress(TimeoutError):
            await self.wait_for(lambda: self.is_leader, timeout)
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
                ch.close()
        self._channels.clear()
        self._dispatch.clear()
        self._state.cancel_all()
        session = self._session
        if session is not None:
            await session.close()
        self.notify_changed()

    async def __aenter__(self) -> LocalBus:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        role = "leader" if self.is_leader else "follower"
        mode = "cross-process" if self.cross_process else "in-process"
        return f"<LocalBus {self.member_id} {role} epoch={self._position.epoch} {mode}>"

    # --- channels (BroadcastChannel calls these) -----------------------------------------------

    def attach(self, ch: BroadcastChannel, name: str) -> None:
        """A channel named ``name`` opened: it receives from now on."""
        if self._closed:
            raise InvalidStateError("bus is closed")
        self._channels[name] = (*self._channels.get(name, ()), ch)

    def detach(self, ch: BroadcastChannel, name: str) -> None:
        """A channel closed: it receives nothing more."""
        rest = tuple(c for c in self._channels.get(name, ()) if c is not ch)
        if rest:
            self._channels[name] = rest
        else:
            self._channels.pop(name, None)

    def post(self, ch: BroadcastChannel, name: str, name_json: bytes, data: Any) -> None:
        """``ch.post_message(data)``: sequence or queue it for the other processes, and deliver
        it to this process's other channels named ``name`` (``name_json``: its JSON encoding)."""
        if self._closed:
            raise InvalidStateError("bus is closed")
        raw, copy = F.encode_data(data)
        if len(raw) + len(name_json) > F.MAX_DATA:
            raise DataCloneError(f"message too large: {len(raw)} bytes of data (max {F.MAX_DATA})")
        t = monotonic_ns()
        mid = self._next_id = self._next_id + 1
        seq = None
        session = self._session
        if session is not None:
            hub = session.hub
            if hub is not None:
                seq = hub.publish_local(name_json, mid, t, raw)
            else:
                session.queue_post(mid, F.post_body(name_json, mid, t, raw))
        receivers = self._channels.get(name)
        if receivers is not None and (len(receivers) > 1 or receivers[0] is not ch):
            self._dispatch.push((receivers, ch, raw, copy, seq, self.member_id, None, t))

    # --- machinery (BusPort: the session, hub, link and state broker call these) -------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    @property
    def position(self) -> Position:
        """The delivery position: ``(epoch, seq)`` of the last hub frame processed."""
        return self._position

    def receive(self, src: str, mid: int, name: str, raw: Any, seq: int, t: int) -> None:
        """A message from another process (already sequenced by the hub)."""
        if src == self.member_id:
            return
        seen = self._seen
        last = seen.get(src)
        if last is not None:
            if mid <= last:
                return  # resent after a failover; already delivered
            if mid != last + 1:
                self.report_gap(seq)  # the sender dropped queued messages
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
                self.report_gap(seq)
                self._dispatch.deliver_or_push(
                    (receivers, None, None, NO_COPY, seq, src, f"undecodable data: {exc}", t)
                )
                return
            self._dispatch.deliver_or_push((receivers, None, raw, copy, seq, src, None, t))

    def message_error(self, name: str, seq: int | None, src: str | None, error: str) -> None:
        """Fire ``messageerror`` on this process's channels named ``name``."""
        receivers = self._channels.get(name)
        if receivers is not None:
            self._dispatch.push((receivers, None, None, NO_COPY, seq, src, error, monotonic_ns()))

    def report_gap(self, seq: int) -> None:
        """This member may have missed messages before ``seq``: emit ``gap`` (once per tick)."""
        if not self._gap_pending:
            self._gap_pending = True
            self._loop.call_soon(self._fire_gap, self._position.epoch, seq)

    def _fire_gap(self, epoch: int, seq: int) -> None:
        self._gap_pending = False
        self.gap.emit(epoch, seq)

    def after_deliveries(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` after every delivery queued so far (keeps state answers in order)."""
        self._dispatch.call(fn)

    @property
    def member_info(self) -> list[F.Member]:
        """The members the hub announced (leader first), with their state providers."""
        return self._member_info

    @property
    def known_leader(self) -> str | None:
        """The leader the hub announced; None while there is none (unlike ``leader_id``, which
        is this member in degraded mode)."""
        return self._leader_id

    def set_members(self, leader: str, members: list[F.Member]) -> None:
        """The hub announced its leader and members: emit what changed."""
        changed = [m.member for m in members] != [m.member for m in self._member_info]
        self._member_info = members
        self._leader_id = leader
        epoch = self._position.epoch
        if (epoch, leader) != self._announced:
            self._announced = (epoch, leader)
            if self.leader_changed.connected:
                self._loop.call_soon(self.leader_changed.emit, epoch, leader)
        if changed:
            if self.members_changed.connected:
                self._loop.call_soon(self.members_changed.emit, self.members())
            self.notify_changed()

    def lost_leadership(self) -> None:
        """This member's hub closed."""
        self._member_info = []
        self._leader_id = None
        self.notify_changed()

    def link_lost(self) -> None:
        """The connection to the leader's hub closed."""
        self._member_info = []
        self._leader_id = None
        self._state.cancel_all()
        self.notify_changed()

    def degrade(self, reason: str) -> None:
        """Give up on other processes: in-process delivery only from now on (one warning)."""
        if self._degraded:
            return
        self._degraded = True
        log.warning("bus: cross-process delivery unavailable (%s); in-process only", reason)
        session, self._session = self._session, None
        if session is not None:
            session.lock.close()
        if self.leader_changed.connected:
            self._loop.call_soon(self.leader_changed.emit, 0, self.member_id)
        self.notify_changed()

    def notify_changed(self) -> None:
        """Wake ``wait_for`` callers: something they may be waiting for changed."""
        ev, self._changed = self._changed, asyncio.Event()
        ev.set()

    async def wait_for(self, pred: Callable[[], bool], seconds: float) -> None:
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

    def provider_names(self) -> list[str]:
        """The state names this member provides."""
        return self._state.names()

    def on_control(self, f: F.RoutedRequest | F.RoutedReply) -> None:
        """A state request or reply routed to this member."""
        if isinstance(f, F.RoutedRequest):
            self._state.on_request(f)
        else:
            self._state.on_reply(f)

    def send_control(self, f: F.ControlToHub) -> bool:
        """Send a control frame to the hub; False when there is no hub to send it to."""
        session = self._session
        return session is not None and session.send_control(f)

    @property
    def connecting(self) -> bool:
        """Cross-process, but neither leading nor connected to a hub yet."""
        session = self._session
        return session is not None and not session.connected
