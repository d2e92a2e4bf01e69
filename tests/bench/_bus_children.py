"""The child processes of ``bus.py``'s cross-process benchmark: a core.bus member, and the raw
asyncio Unix-socket relay (server and client) it is compared with."""

from __future__ import annotations

import asyncio
import json
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.bus import BroadcastChannel, LocalBus

now = time.perf_counter_ns  # CLOCK_MONOTONIC on Linux: comparable across processes
PAYLOAD = {"kind": "conversation.upserted", "id": "4f1c2a9e", "title": "Weekly sync", "v": 3}


# --- 2. cross-process: children ---------------------------------------------------------------


def emit(ev: str, **fields: Any) -> None:
    fields["ev"] = ev
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


class BenchMember:
    """Child side: sends/receives on behalf of the parent, reports over stdout."""

    def __init__(self, post: Callable[[Any], None]) -> None:
        self.post = post
        self.lat: list[int] = []  # every latency so far; reported in slices
        self.lat_expect = 0
        self.lat_reported = 0
        self.count = 0
        self.expect = -1

    def on_data(self, d: Any) -> None:
        if d["k"] == "lat":
            self.lat.append(now() - d["t"])
            if len(self.lat) == self.lat_expect:
                self.report_lat()
        else:
            self.count += 1
            if self.count == self.expect:
                emit("done", t=now())

    def report_lat(self) -> None:
        emit("lat", values=self.lat[self.lat_reported : self.lat_expect])
        self.lat_reported = self.lat_expect

    async def serve(self, extra: Callable[[dict[str, Any]], None] | None = None) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            cmd = json.loads(line)
            op = cmd["op"]
            if op == "lat_recv":  # messages may already be arriving: counts are cumulative
                self.lat_expect += cmd["n"]
                if len(self.lat) >= self.lat_expect:
                    self.report_lat()
            elif op == "lat_send":
                for i in range(cmd["n"]):
                    self.post({**PAYLOAD, "k": "lat", "i": i, "t": now()})
                    await asyncio.sleep(cmd["every"])
                emit("sent")
            elif op == "thr":  # messages of others may already have arrived: keep counting
                self.expect = cmd["expect"]
                if self.count >= self.expect:
                    emit("done", t=now())
                for i in range(cmd["m"]):
                    self.post({**PAYLOAD, "k": "thr", "i": i})
                    if i % 200 == 199:
                        await asyncio.sleep(0)
                emit("posted")
            elif op == "exit":
                return


async def child_ours(scope: str, directory: str) -> None:
    bus = await LocalBus.open(scope, runtime_dir=directory)
    ch = BroadcastChannel("bench", bus=bus)
    member = BenchMember(ch.post_message)
    ch.on_message = lambda ev: member.on_data(ev.data)
    bus.leader_changed.connect(
        lambda e, m: emit("leader", epoch=e, leader=m, is_leader=bus.is_leader, t=now()),
    )
    emit("ready", is_leader=bus.is_leader, epoch=bus.epoch, t=now())
    await member.serve()
    await bus.close()


LEN = struct.Struct(">I")


class Frames(asyncio.Protocol):
    """Length-prefixed frames over a stream (used by the relay and its clients)."""

    def __init__(self, on_frames: Callable[[Frames, list[bytes], bytes], None]) -> None:
        self.buf = bytearray()
        self.on_frames = on_frames
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        frames, off = [], 0
        while len(buf) - off >= 4:
            (n,) = LEN.unpack_from(buf, off)
            if len(buf) - off - 4 < n:
                break
            frames.append(bytes(buf[off + 4 : off + 4 + n]))
            off += 4 + n
        whole = bytes(buf[:off])
        del buf[:off]
        if frames:
            self.on_frames(self, frames, whole)


async def child_relay_server(address: str) -> None:
    clients: list[Frames] = []

    def forward(src: Frames, _frames: list[bytes], whole: bytes) -> None:
        for c in clients:
            if c is not src and c.transport is not None:
                c.transport.write(whole)

    def factory() -> Frames:
        proto = Frames(forward)
        clients.append(proto)
        return proto

    server = await asyncio.get_running_loop().create_unix_server(factory, address)
    emit("ready")
    await BenchMember(lambda d: None).serve()
    server.close()


async def child_relay_client(address: str) -> None:
    member = BenchMember(lambda d: None)
    decode, encode = msgspec.json.decode, msgspec.json.encode

    def on_frames(_p: Frames, frames: list[bytes], _whole: bytes) -> None:
        for f in frames:
            member.on_data(decode(f))

    _t, proto = await asyncio.get_running_loop().create_unix_connection(
        lambda: Frames(on_frames), address
    )

    def post(d: Any) -> None:
        body = encode(d)
        proto.transport.write(LEN.pack(len(body)) + body)  # type: ignore[union-attr]

    member.post = post
    emit("ready", t=now())
    await member.serve()
