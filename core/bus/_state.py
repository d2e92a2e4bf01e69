"""State handshake: a late window/process asks the others for a snapshot of named state.

A member registers ``set_state_provider(name, fn)``; ``request_state(name)`` asks the leader
if it provides ``name``, else this process's own provider, else the first other member that
provides it. The reply carries the hub sequence number the provider had processed when ``fn``
ran: the snapshot reflects every message with ``seq <= at``, and every such message from another
process has already been delivered to the requester when ``request_state`` returns.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from . import _frames as F

if TYPE_CHECKING:
    from ._port import BusPort

log = logging.getLogger(__name__)

Provider = Callable[[], Any]


class StateBroker:
    """Providers of this member and its pending requests."""

    def __init__(self, bus: BusPort) -> None:
        self.bus = bus
        self.providers: dict[str, Provider] = {}
        self._pending: dict[int, asyncio.Future[tuple[Any, int] | None]] = {}
        self._rids = itertools.count(1)

    def names(self) -> list[str]:
        return sorted(self.providers)

    def set_provider(self, name: str, fn: Provider | None) -> None:
        if fn is None:
            self.providers.pop(name, None)
        else:
            if not callable(fn):
                raise TypeError("provider must be callable")
            self.providers[name] = fn
        self.bus.send_control(F.Provide(epoch=0, version=F.VERSION, providers=self.names()))

    def _target(self, name: str) -> str | None:
        bus = self.bus
        members = bus.member_info
        leader = bus.known_leader
        for m in members:
            if m.member == leader and name in m.providers:
                return leader
        if name in self.providers:
            return bus.member_id
        for m in members:
            if m.member != bus.member_id and name in m.providers:
                return m.member
        # Our member list may be a moment old: ask the leader, it answers "no" at worst.
        return leader if leader is not None and leader != bus.member_id else None

    async def request(self, name: str, seconds: float) -> tuple[Any, int] | None:
        bus = self.bus
        loop = bus.loop
        deadline = loop.time() + seconds
        if bus.connecting and name not in self.providers:
            try:
                await bus.wait_for(lambda: not bus.connecting, seconds)
            except TimeoutError:
                return None
        target = self._target(name)
        if target is None:
            return None
        if target == bus.member_id:
            return await self._local(name)
        rid = next(self._rids)
        fut: asyncio.Future[tuple[Any, int] | None] = loop.create_future()
        self._pending[rid] = fut
        try:
            request = F.StateRequest(
                epoch=0, version=F.VERSION, to=target, name=name, request_id=rid
            )
            if not bus.send_control(request):
                return None
            async with asyncio.timeout(max(0.0, deadline - loop.time())):
                return await fut
        except TimeoutError:
            return None
        finally:
            self._pending.pop(rid, None)

    async def _local(self, name: str) -> tuple[Any, int] | None:
        fut: asyncio.Future[tuple[Any, int] | None] = self.bus.loop.create_future()

        def done(raw: bytes | None, at: int) -> None:
            if not fut.done():
                fut.set_result(None if raw is None else (F.decode_json(raw), at))

        self._run_provider(name, done)
        return await fut

    def _run_provider(self, name: str, done: Callable[[bytes | None, int], None]) -> None:
        """Call the provider once every message processed so far has been delivered here, so
        the snapshot reflects all of them; ``done(raw_or_None, seq)``."""
        bus = self.bus
        at = bus.position.seq

        def run() -> None:
            fn = self.providers.get(name)
            if fn is None:
                done(None, at)
                return
            try:
                value = fn()
            except Exception:
                log.exception("bus: state provider %r failed", name)
                done(None, at)
                return
            if inspect.isawaitable(value):
                bus.loop.create_task(finish(value))
            else:
                encode(value)

        async def finish(awaitable: Any) -> None:
            try:
                value = await awaitable
            except Exception:
                log.exception("bus: state provider %r failed", name)
                done(None, at)
                return
            encode(value)

        def encode(value: Any) -> None:
            try:
                raw, _copy = F.encode_data(value)
            except F.DataCloneError as exc:
                log.warning("bus: state %r cannot be sent: %s", name, exc)
                done(None, at)
                return
            done(raw, at)

        bus.after_deliveries(run)

    def on_request(self, f: F.RoutedRequest) -> None:
        """Another member asks us for ``f.name``: answer after our pending deliveries."""

        def done(raw: bytes | None, at: int) -> None:
            send = self.bus.send_control
            rid = f.request_id
            fail = F.StateReply(epoch=0, version=F.VERSION, to=f.src, request_id=rid, ok=False)
            if raw is None:
                send(fail)
                return
            reply = F.StateReply(
                epoch=0,
                version=F.VERSION,
                to=f.src,
                request_id=rid,
                ok=True,
                at=at,
                data=msgspec.Raw(raw),
            )
            try:
                send(reply)
            except F.DataCloneError as exc:
                log.warning("bus: state %r too large to send: %s", f.name, exc)
                send(fail)

        self._run_provider(f.name, done)

    def on_reply(self, f: F.RoutedReply) -> None:
        """Resolve after the deliveries queued before the reply arrived."""

        def resolve() -> None:
            fut = self._pending.get(f.request_id)
            if fut is None or fut.done():
                return
            if not f.ok:
                fut.set_result(None)
                return
            try:
                fut.set_result((F.decode_json(f.data), f.at))
            except Exception as exc:
                log.warning("bus: undecodable state reply: %s", exc)
                fut.set_result(None)

        self.bus.after_deliveries(resolve)

    def cancel_all(self) -> None:
        for fut in self._pending.values():
            if not fut.done():
                fut.set_result(None)
        self._pending.clear()
