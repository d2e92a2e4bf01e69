"""The leader's hub: accepts followers, sequences and fans out messages, routes control frames.

Forwarding never re-encodes a message: the sender's JSON bytes are validated once (data kept as
``msgspec.Raw``) and forwarded with ``{"s":<seq>,"src":"<member>",`` spliced in front. Writes are
batched (one ``write`` per connection per loop callback). A sender's messages are acknowledged
only once every connection's send buffer has drained into the kernel, so an acknowledged message
survives a ``kill -9`` of the hub; unacknowledged ones are resent by the follower after failover
and dropped as duplicates by receivers that already had them.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from collections import deque
from typing import TYPE_CHECKING, Any, cast

from . import _frames as F
from ._frames import FrameError, FrameReader, frame, pack_len
from ._position import replay_start

if TYPE_CHECKING:
    from ._port import BusPort, Leadership
    from ._transport import Transport

log = logging.getLogger(__name__)

MAX_BUFFERED = 16 << 20  # bytes queued for one follower before it is dropped as too slow
STALL_S = 5.0  # a follower that reads nothing for this long is dropped
HELLO_S = 5.0
RING_FRAMES = 20_000  # replay ring for members reconnecting after a failover or a drop
RING_BYTES = 8 << 20  # < MAX_BUFFERED: a full replay never gets its reader dropped


class HubConn(asyncio.Protocol):
    """One follower connection, as seen by the hub."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.transport: asyncio.Transport | None = None
        self.reader = FrameReader()
        self.member: str | None = None
        self.src_json = b""
        self.pid = 0
        self.providers: list[str] = []
        self.out: list[bytes] = []
        self.paused_at: float | None = None
        self._hello_timer: asyncio.TimerHandle | None = None
        self.closed: asyncio.Future[None] = hub.loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream connection (Unix socket or named pipe): always an asyncio.Transport.
        t = self.transport = cast(asyncio.Transport, transport)
        if not self.hub.transport.peer_ok(transport):
            log.warning("bus hub: refused a connection from another user")
            t.abort()
            return
        t.set_write_buffer_limits(high=0, low=0)  # exact drain notifications
        self.hub.pending.add(self)
        self._hello_timer = asyncio.get_running_loop().call_later(HELLO_S, self.drop, "no hello")

    def data_received(self, data: bytes) -> None:
        hub = self.hub
        try:
            frames = self.reader.feed(data)
        except FrameError as exc:
            self.drop(str(exc))
            return
        for payload in frames:
            if not hub.on_frame(self, payload):
                break
        hub.flush()  # one write per member for this whole batch of frames

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._hello_timer is not None:
            self._hello_timer.cancel()
        if not self.closed.done():
            self.closed.set_result(None)
        self.hub.lost(self)

    def pause_writing(self) -> None:
        self.paused_at = self.hub.loop.time()
        self.hub.unflushed.add(self)
        self.hub.arm_stall_check()

    def resume_writing(self) -> None:
        self.paused_at = None
        hub = self.hub
        hub.unflushed.discard(self)
        if not hub.unflushed and hub.acks:
            hub.send_acks()

    def drop(self, reason: str) -> None:
        if self.transport is not None and not self.transport.is_closing():
            log.warning("bus hub: dropping member %s: %s", self.member or "(no hello)", reason)
            self.transport.abort()

    def hello_done(self) -> None:
        if self._hello_timer is not None:
            self._hello_timer.cancel()
            self._hello_timer = None


class Hub:
    """Hosts the scope's bus for followers; lives exactly as long as this process leads."""

    def __init__(
        self, bus: BusPort, leadership: Leadership, transport: Transport, epoch: int
    ) -> None:
        self.bus = bus
        self.leadership = leadership
        self.position = position = bus.position  # issues this epoch's seqs
        self.loop = bus.loop
        self.transport = transport
        self.epoch = epoch
        self.base_epoch, self.base = position.epoch, position.seq  # where this epoch starts
        self.conns: dict[str, HubConn] = {}
        self.pending: set[HubConn] = set()
        self.unflushed: set[HubConn] = set()
        self.acks: dict[HubConn, tuple[int, int]] = {}  # conn -> (message id, its seq)
        self._dirty: set[HubConn] = set()
        self._flush_scheduled = False
        self._stall_timer: asyncio.TimerHandle | None = None
        self._ring: deque[tuple[int, Any, bool]] = deque()  # (seq, frame or parts, local)
        self._ring_bytes = 0
        self._server: Any = None
        self._own_stamp = b'"src":%b,"e":%d,' % (F.encode_json(bus.member_id), epoch)

    async def start(self) -> None:
        self._server = await self.transport.serve(lambda: HubConn(self))

    async def close(self, grace: float = 1.0) -> None:
        """Flush, close every connection (followers see EOF), remove the socket."""
        if self._server is not None:
            self._server.close()
            self._server = None
        self.flush()
        conns = [c for c in (*self.conns.values(), *self.pending) if c.transport is not None]
        self.conns.clear()
        self.pending.clear()
        for conn in conns:
            if conn.transport is not None:  # always: filtered above (this narrows it for mypy)
                conn.transport.close()  # after its buffer drains
        self.transport.cleanup()
        if self._stall_timer is not None:
            self._stall_timer.cancel()
        if conns:
            await asyncio.wait([c.closed for c in conns], timeout=grace)

    # --- messages -----------------------------------------------------------------------------

    def publish_local(self, name_json: bytes, mid: int, t: int, raw: bytes) -> int:
        """Sequence and fan out a message posted in this (the leader's) process."""
        seq = self.position.issue()
        ring = self._ring
        parts = (name_json, mid, t, raw)
        ring.append((seq, parts, True))  # framed lazily: often nobody needs the bytes
        self._ring_bytes += len(raw) + 64
        if len(ring) > RING_FRAMES or self._ring_bytes > RING_BYTES:
            self._trim()
        if self.conns:
            self._broadcast(self._frame_local(seq, parts))
        return seq

    def _frame_local(self, seq: int, parts: tuple[bytes, int, int, bytes]) -> bytes:
        stamp = b'{"s":%d,%b' % (seq, self._own_stamp)
        body = F.post_body(*parts)
        return pack_len(len(stamp) + len(body)) + stamp + body

    def publish_body(self, body: bytes) -> int:
        """Sequence and fan out an already encoded message of ours (queued while following)."""
        seq = self.position.issue()
        stamp = b'{"s":%d,%b' % (seq, self._own_stamp)
        self._fanout(pack_len(len(stamp) + len(body)) + stamp + body, None, seq)
        return seq

    def _trim(self) -> None:
        ring = self._ring
        while ring and (len(ring) > RING_FRAMES or self._ring_bytes > RING_BYTES):
            _seq, data, local = ring.popleft()
            self._ring_bytes -= len(data[3]) + 64 if local else len(data)

    def _fanout(self, data: bytes, exclude: HubConn | None, seq: int) -> None:
        """Sequenced frame: into the replay ring and to every member but its sender."""
        ring = self._ring
        ring.append((seq, data, False))
        self._ring_bytes += len(data)
        if len(ring) > RING_FRAMES or self._ring_bytes > RING_BYTES:
            self._trim()
        self._broadcast(data, exclude)

    def _send(self, conn: HubConn, data: bytes) -> None:
        conn.out.append(data)
        self._dirty.add(conn)
        self.schedule_flush()

    def _broadcast(self, data: bytes, exclude: HubConn | None = None) -> None:
        dirty = self._dirty
        for conn in self.conns.values():
            if conn is not exclude:
                conn.out.append(data)
                dirty.add(conn)
        self.schedule_flush()

    def schedule_flush(self) -> None:
        if not self._flush_scheduled and (self._dirty or self.acks):
            self._flush_scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        for conn in self._dirty:
            out, t = conn.out, conn.transport
            if not out or t is None or t.is_closing():
                out.clear()
                continue
            t.write(out[0] if len(out) == 1 else b"".join(out))
            out.clear()
            if t.get_write_buffer_size() > MAX_BUFFERED:
                conn.drop(f"slow reader ({t.get_write_buffer_size()} bytes queued)")
        self._dirty.clear()
        if self.acks and not self.unflushed:
            self.send_acks()

    def send_acks(self) -> None:
        acks, self.acks = self.acks, {}
        for conn, (mid, seq) in acks.items():
            t = conn.transport
            if t is not None and not t.is_closing():
                t.write(frame(F.Ack(epoch=self.epoch, version=F.VERSION, message_id=mid, seq=seq)))

    def arm_stall_check(self) -> None:
        if self._stall_timer is None:
            self._stall_timer = self.loop.call_later(1.0, self._check_stalls)

    def _check_stalls(self) -> None:
        self._stall_timer = None
        now = self.loop.time()
        for conn in list(self.unflushed):
            if conn.paused_at is not None and now - conn.paused_at > STALL_S:
                conn.drop(f"read nothing for {STALL_S:.0f} s")
                self.unflushed.discard(conn)
        if self.unflushed:
            self.arm_stall_check()
        elif self.acks:
            self.send_acks()

    # --- input --------------------------------------------------------------------------------

    def on_frame(self, conn: HubConn, payload: bytes) -> bool:
        """Handle one frame from a follower; False if the connection was dropped."""
        try:
            f = F.decode_to_hub(payload)
        except Exception as exc:
            conn.drop(f"invalid frame: {str(exc)[:80]}")
            return False
        if f.version != F.VERSION:
            conn.drop(f"unsupported version {f.version}")
            return False
        if conn.member is None:
            if not isinstance(f, F.Hello):
                conn.drop("first frame is not hello")
                return False
            return self._hello(conn, f)
        if f.epoch != self.epoch:
            conn.drop(f"frame of epoch {f.epoch}, hub epoch is {self.epoch}")
            return False
        # isinstance (not ``match``): as fast as ``type(f) is`` for the hot Post case, and mypy
        # narrows it. The frame classes have no subclasses, so it tests the exact type.
        if isinstance(f, F.Post):
            if payload[0] != 0x7B or len(payload) > F.MAX_POST:  # "{": the splice relies on it
                conn.drop("message frame too large or not starting with '{'")
                return False
            seq = self.position.issue()
            stamp = b'{"s":%d,"src":%b,' % (seq, conn.src_json)
            self._fanout(
                b"".join((pack_len(len(stamp) + len(payload) - 1), stamp, memoryview(payload)[1:])),
                conn,
                seq,
            )
            self.acks[conn] = (f.message_id, seq)
            self.bus.receive(conn.member, f.message_id, f.channel, f.data, seq, f.time)
        elif isinstance(f, F.StateRequest | F.StateReply):
            self.route(conn.member, f)
        elif isinstance(f, F.Provide):
            conn.providers = list(f.providers)
            self.members_changed()
        elif isinstance(f, F.Yield):
            self.handover(conn.member)
        else:
            conn.drop(f"unexpected {type(f).__name__} frame")
            return False
        return True

    def _hello(self, conn: HubConn, h: F.Hello) -> bool:
        member = h.member
        if not F.MEMBER_ID.fullmatch(member) or member == self.bus.member_id:
            conn.drop("bad member id")
            return False
        if h.epoch > self.epoch:
            conn.drop(f"member knows epoch {h.epoch} > {self.epoch}; this hub is stale")
            self.leadership.restart_leadership(h.epoch)
            return False
        old = self.conns.pop(member, None)
        if old is not None:
            old.drop("replaced by a new connection")
        self.pending.discard(conn)
        conn.hello_done()
        conn.member = member
        conn.src_json = F.encode_json(member)
        conn.pid = h.pid
        conn.providers = list(h.providers)
        start = replay_start(h.last_epoch, h.last_seq, self.epoch, self.base)
        replay: list[bytes] = []
        last = self.position.seq
        first = last + 1
        if start is not None and self._ring:
            lo = self._ring[0][0]
            skip = max(0, start - lo)
            replay = [
                self._frame_local(s, data) if local else data
                for s, data, local in itertools.islice(self._ring, skip, None)
            ]
            if replay:
                first = max(lo, start)
        welcome = F.Welcome(
            epoch=self.epoch,
            version=F.VERSION,
            leader=self.bus.member_id,
            seq=last,
            base_seq=self.base,
            base_epoch=self.base_epoch,
            replay_from=first,
            members=self.member_list(extra=conn),
        )
        conn.out.append(frame(welcome))
        conn.out.extend(replay)
        self._dirty.add(conn)
        self.conns[member] = conn
        self.members_changed(exclude=conn)
        return True

    def lost(self, conn: HubConn) -> None:
        self.pending.discard(conn)
        self.unflushed.discard(conn)
        self.acks.pop(conn, None)
        self._dirty.discard(conn)
        if conn.member is not None and self.conns.get(conn.member) is conn:
            del self.conns[conn.member]
            self.members_changed()
        if not self.unflushed and self.acks:
            self.send_acks()

    # --- membership, routing, handover ---------------------------------------------------------

    def member_list(self, extra: HubConn | None = None) -> list[F.Member]:
        bus = self.bus
        ms = [F.Member(member=bus.member_id, pid=os.getpid(), providers=bus.provider_names())]
        conns = list(self.conns.values())
        if extra is not None and extra not in conns:
            conns.append(extra)
        ms.extend(
            F.Member(member=c.member, pid=c.pid, providers=c.providers) for c in conns if c.member
        )
        return ms

    def members_changed(self, exclude: HubConn | None = None) -> None:
        ms = self.member_list()
        self.bus.set_members(self.bus.member_id, ms)
        members = F.Members(
            epoch=self.epoch, version=F.VERSION, leader=self.bus.member_id, members=ms
        )
        self._broadcast(frame(members), exclude)

    def route(self, src: str, f: F.StateRequest | F.StateReply) -> None:
        """Deliver a state request/reply from ``src`` to its ``to`` member (maybe ourselves)."""
        out: F.RoutedRequest | F.RoutedReply
        e, v, to, rid = self.epoch, F.VERSION, f.to, f.request_id
        if isinstance(f, F.StateRequest):
            out = F.RoutedRequest(epoch=e, version=v, src=src, to=to, name=f.name, request_id=rid)
        else:
            out = F.RoutedReply(
                epoch=e, version=v, src=src, to=to, request_id=rid, ok=f.ok, at=f.at, data=f.data
            )
        if f.to == self.bus.member_id:
            self.bus.on_control(out)
            return
        conn = self.conns.get(f.to)
        if conn is not None:
            try:
                self._send(conn, frame(out))
                return
            except F.DataCloneError:
                pass
        if isinstance(f, F.StateRequest):  # unknown target or too large: fail fast
            self.route(to, F.StateReply(epoch=e, version=v, to=src, request_id=rid, ok=False))

    def handover(self, successor: str) -> None:
        """Tell everyone who should lead next, then step down."""
        self._broadcast(frame(F.Handover(epoch=self.epoch, version=F.VERSION, to=successor)))
        self.leadership.stop_leading(holdoff=True)
