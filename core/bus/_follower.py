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
        self.position = self.bus.position
        self.transport: asyncio.Transport | None = None
        self.reader = FrameReader()
        self.epoch = 0  # the welcome's: frames of any other epoch are refused
        self.prefix = b""
        self.out: list[bytes] = []
        self._flush_scheduled = False
        loop = self.bus.loop
        self.welcomed: asyncio.Future[None] = loop.create_future()
        self.done: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream connection (Unix socket or named pipe): always an asyncio.Transport.
        t = self.transport = cast(asyncio.Transport, transport)
        if not self.session.transport.peer_ok(transport):
            log.warning("bus: the hub socket belongs to another user; not using it")
            t.abort()
            return
        bus, position = self.bus, self.position
        hello = F.Hello(
            epoch=position.max_epoch,
            version=F.VERSION,
            member=bus.member_id,
            pid=os.getpid(),
            last_epoch=position.epoch,
            last_seq=position.seq,
            providers=bus.provider_names(),
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
            self.bus.loop.call_soon(self.flush)

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
            if f.epoch != self.epoch:
                log.debug("bus: refused a frame of epoch %d (hub epoch %d)", f.epoch, self.epoch)
                return
            s = f.seq
            # No gap check here: within one connection the hub skips nothing but our own
            # messages (whose seqs come with acks). Gaps show at (re)connection: _welcome.
            if not self.position.advance(s):
                return  # replayed twice
            if f.version != F.VERSION:
                bus.report_gap(s)
                bus.message_error(f.channel, s, f.src, f"unsupported frame version {f.version}")
            else:
                bus.receive(f.src, f.message_id, f.channel, f.data, s, f.time)
            return
        if f.version != F.VERSION:
            log.debug("bus: ignored a %s frame of version %d", type(f).__name__, f.version)
        elif isinstance(f, F.Welcome):
            self._welcome(f)
        elif f.epoch != self.epoch:
            log.debug("bus: refused a %s frame of epoch %d", type(f).__name__, f.epoch)
        elif isinstance(f, F.Ack):
            # Every other frame before f.seq has arrived before the ack.
            self.position.advance(f.seq)
            self.session.acked(f.message_id)
        elif isinstance(f, F.Members):
            bus.set_members(f.leader, f.members)
        elif isinstance(f, F.Handover):
            self.session.on_handover(f.to)
        elif isinstance(f, F.RoutedRequest | F.RoutedReply):
            bus.on_control(f)

    def _bad_frame(self, payload: bytes, error: str) -> None:
        bus = self.bus
        log.debug("bus: undecodable frame (%d bytes): %s", len(payload), error[:200])
        bus.report_gap(self.position.seq + 1)  # whatever it was, this member missed it
        name = F.salvage_channel(payload)
        if name is not None:
            bus.message_error(name, None, None, f"invalid frame: {error[:200]}")

    def _welcome(self, w: F.Welcome) -> None:
        bus, position = self.bus, self.position
        if position.is_stale(w.epoch):
            log.warning(
                "bus: refusing a hub of epoch %d (already saw %d)", w.epoch, position.max_epoch
            )
            self.abort()
            return
        self.set_epoch(w.epoch)
        gap = position.welcome(w.epoch, w.seq, w.base_seq, w.base_epoch, w.replay_from)
        bus.set_members(w.leader, w.members)
        self.session.resend_outbox(self)
        self.welcomed.set_result(None)
        if gap is not None:
            bus.report_gap(gap)
        bus.notify_changed()
