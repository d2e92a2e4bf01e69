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
    from ._bus import LocalBus

log = logging.getLogger("core.bus")

Provider = Callable[[], Any]


class StateBroker:
    """Providers of this member and its pending requests."""

    def __init__(self, bus: LocalBus) -> None:
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
        session = self.bus._session
        if session is not None:
            session.send_control(F.Provide(e=0, v=F.VERSION, p=self.names()))

    def _target(self, name: str) -> str | None:
        bus = self.bus
        members = bus._member_info
        leader = bus._leader_id
        for m in members:
            if m.m == leader and name in m.p:
                return leader
        if name in self.providers:
            return bus.member_id
        for m in members:
            if m.m != bus.member_id and name in m.p:
                return m.m
        return None

    async def request(self, name: str, seconds: float) -> tuple[Any, int] | None:
        bus = self.bus
        loop = bus._loop
        deadline = loop.time() + seconds
        session = bus._session
        if session is not None and not session.connected and name not in self.providers:
            try:
                await bus._wait_for(lambda: session.connected, seconds)
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
            if session is None or not session.send_control(
                F.StateRequest(e=0, v=F.VERSION, to=target, n=name, rid=rid)
            ):
                return None
            async with asyncio.timeout(max(0.0, deadline - loop.time())):
                return await fut
        except TimeoutError:
            return None
        finally:
            self._pending.pop(rid, None)

    async def _local(self, name: str) -> tuple[Any, int] | None:
        try:
            raw, at = await self._snapshot(name)
        except Exception:
            log.exception("bus: state provider %r failed", name)
            return None
        return F.decode_json(raw), at

    async def _snapshot(self, name: str) -> tuple[bytes, int]:
        value = self.providers[name]()
        if inspect.isawaitable(value):
            value = await value
        raw, _copy = F.encode_data(value)
        return raw, self.bus._pos_seq

    def on_request(self, f: F.RoutedRequest) -> None:
        """Another member asks us for ``f.n``: answer (asynchronously if the provider is)."""
        fn = self.providers.get(f.n)
        if fn is None:
            self._reply(f, None, ok=False)
            return
        try:
            value = fn()
        except Exception:
            log.exception("bus: state provider %r failed", f.n)
            self._reply(f, None, ok=False)
            return
        if inspect.isawaitable(value):

            async def later() -> None:
                try:
                    self._reply(f, await value, ok=True)
                except Exception:
                    log.exception("bus: state provider %r failed", f.n)
                    self._reply(f, None, ok=False)

            self.bus._loop.create_task(later())
        else:
            self._reply(f, value, ok=True)

    def _reply(self, f: F.RoutedRequest, value: Any, *, ok: bool) -> None:
        reply = F.StateReply(e=0, v=F.VERSION, to=f.src, rid=f.rid, ok=False)
        if ok:
            try:
                raw, _copy = F.encode_data(value)
                reply = F.StateReply(
                    e=0,
                    v=F.VERSION,
                    to=f.src,
                    rid=f.rid,
                    ok=True,
                    at=self.bus._pos_seq,
                    d=msgspec.Raw(raw),
                )
            except F.DataCloneError as exc:
                log.warning("bus: state %r cannot be sent: %s", f.n, exc)
        session = self.bus._session
        if session is not None:
            try:
                session.send_control(reply)
            except F.DataCloneError as exc:
                log.warning("bus: state %r too large to send: %s", f.n, exc)
                session.send_control(F.StateReply(e=0, v=F.VERSION, to=f.src, rid=f.rid, ok=False))

    def on_reply(self, f: F.RoutedReply) -> None:
        fut = self._pending.get(f.rid)
        if fut is None or fut.done():
            return
        if not f.ok:
            fut.set_result(None)
            return
        try:
            fut.set_result((F.decode_json(f.d), f.at))
        except Exception as exc:
            log.warning("bus: undecodable state reply: %s", exc)
            fut.set_result(None)

    def cancel_all(self) -> None:
        for fut in self._pending.values():
            if not fut.done():
                fut.set_result(None)
        self._pending.clear()
