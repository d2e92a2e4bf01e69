"""The follower's side: its connection to the hub and the handling of what the hub sends.

Frames are validated strictly; a frame of another epoch than the hub's welcome is refused
(fencing). A frame that cannot be decoded fires ``messageerror`` on its channel when the name
can be recovered, and counts as a gap. Gaps are otherwise detected when (re)connecting: the
welcome says from which position the hub replays, and where its epoch started.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, cast

from . import _frames as F
from ._frames import FrameError, FrameReader, frame, pack_len

if TYPE_CHECKING:
    from ._session import Session

log = logging.getLogger(__name__)


class Link(asyncio.Protocol):
    """The follower's connection to the hub."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.bus = session.bus
        self.transport: asyncio.Transport | None = None
        self.reader = FrameReader()
        self.epoch = 0
        self.prefix = b""
        self.out: list[bytes] = []
        self._flush_scheduled = False
        loop = self.bus._loop
        self.welcomed: asyncio.Future[None] = loop.create_future()
        self.done: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream connection (Unix socket or named pipe): always an asyncio.Transport.
        t = self.transport = cast(asyncio.Transport, transport)
        if not self.session.transport.peer_ok(transport):
            log.warning("bus: the hub socket belongs to another user; not using it")
            t.abort()
            return
        bus = self.bus
        hello = F.Hello(
            e=bus._max_epoch,
            v=F.VERSION,
            m=bus.member_id,
            pid=os.getpid(),
            le=bus._pos_epoch,
            ls=bus._pos_seq,
            p=bus._state.names(),
        )
        t.write(frame(hello))

    def data_received(self, data: bytes) -> None:
        try:
            frames = self.reader.feed(data)
        except FrameError as exc:
            log.warning("bus: bad frame from hub (%s); reconnecting", exc)
            self.abort()
            return
        on_frame = self.on_frame
        for payload in frames:
            if self.done.done():
                break
            on_frame(payload)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)
        if not self.welcomed.done():
            self.welcomed.cancel()

    @property
    def ready(self) -> bool:
        return self.welcomed.done() and not self.welcomed.cancelled() and not self.done.done()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.prefix = b'{"e":%d,' % epoch

    def send_body(self, body: bytes) -> None:
        prefix = self.prefix
        data = (pack_len(len(prefix) + len(body)), prefix, body)
        t = self.transport
        if not self._flush_scheduled and not self.out and t is not None and not t.is_closing():
            # Idle: send at once (latency); what follows in this loop iteration is batched.
            t.write(b"".join(data))
            self._schedule()
            return
        self.out.extend(data)
        self._schedule()

    def send_frame(self, data: bytes) -> None:
        self.out.append(data)
        self._schedule()

    def _schedule(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.bus._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        out, t = self.out, self.transport
        if out and t is not None and not t.is_closing():
            t.write(b"".join(out))
        out.clear()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        self.flush()
        if self.transport is not None:
            self.transport.close()

    # --- frames from the hub ------------------------------------------------------------------

    def on_frame(self, payload: bytes) -> None:
        bus = self.bus
        try:
            f = F.decode_from_hub(payload)
        except Exception as exc:
            self._bad_frame(payload, str(exc))
            return
        # isinstance (not ``match``): as fast as ``type(f) is`` for the hot Msg case, and mypy
        # narrows it. The frame classes have no subclasses, so it tests the exact type.
        if isinstance(f, F.Msg):
            if f.e != self.epoch:
                log.debug("bus: refused a frame of epoch %d (hub epoch %d)", f.e, self.epoch)
                return
            s = f.s
            if s <= bus._pos_seq:
                return  # replayed twice
            # No gap check here: within one connection the hub skips nothing but our own
            # messages (whose seqs come with acks). Gaps show at (re)connection: _welcome.
            bus._pos_seq = s
            if f.v != F.VERSION:
                bus._gap(s)
                bus._message_error(f.c, s, f.src, f"unsupported frame version {f.v}")
            else:
                bus._receive(f.src, f.id, f.c, f.d, s, f.t)
            return
        if f.v != F.VERSION:
            log.debug("bus: ignored a %s frame of version %d", type(f).__name__, f.v)
        elif isinstance(f, F.Welcome):
            self._welcome(f)
        elif f.e != self.epoch:
            log.debug("bus: refused a %s frame of epoch %d", type(f).__name__, f.e)
        elif isinstance(f, F.Ack):
            if f.s > bus._pos_seq:  # every other frame before f.s has arrived before the ack
                bus._pos_seq = f.s
            self.session.acked(f.id)
        elif isinstance(f, F.Members):
            bus._set_members(f.l, f.ms)
        elif isinstance(f, F.Handover):
            self.session.on_handover(f.to)
        elif isinstance(f, F.RoutedRequest):
            bus._state.on_request(f)
        elif isinstance(f, F.RoutedReply):
            bus._state.on_reply(f)

    def _bad_frame(self, payload: bytes, error: str) -> None:
        bus = self.bus
        log.debug("bus: undecodable frame (%d bytes): %s", len(payload), error[:200])
        bus._gap(bus._pos_seq + 1)  # whatever it was, this member missed it
        name = F.salvage_channel(payload)
        if name is not None:
            bus._message_error(name, None, None, f"invalid frame: {error[:200]}")

    def _welcome(self, w: F.Welcome) -> None:
        bus = self.bus
        if w.e < bus._max_epoch:
            log.warning("bus: refusing a hub of epoch %d (already saw %d)", w.e, bus._max_epoch)
            self.abort()
            return
        self.set_epoch(w.e)
        bus._max_epoch = w.e
        le, ls = bus._pos_epoch, bus._pos_seq
        gap = False
        if le == 0:  # a new member: starts now, no replay
            expected = w.s + 1
        elif le == w.e:  # reconnecting to the same hub: replay from where we were
            expected = ls + 1
        else:  # a new epoch: in step only if we were where its leader was
            expected = w.b + 1
            gap = (le, ls) != (w.be, w.b)
        if w.r > expected:  # the hub's replay buffer does not reach back far enough
            gap, expected = True, w.r
        bus._pos_epoch, bus._pos_seq = w.e, expected - 1
        bus._epoch = w.e
        bus._set_members(w.l, w.ms)
        self.session.resend_outbox(self)
        self.welcomed.set_result(None)
        if gap:
            bus._gap(expected)
        bus._notify_changed()
