"""A bus member in its own process, driven by the tests over stdin/stdout JSON lines.

    python -m tests.support._bus_member --scope S --runtime-dir D --name p1 [--channels f,g]

Each channel listener checks, per sender name, that the counters ``i`` of received messages
are contiguous (no loss, no duplicate, no reordering) and reports summaries, not every message.
``expect`` waits until the last counter received from each given sender reaches a value.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from typing import Any

from core.bus import BroadcastChannel, LocalBus, MessageEvent


def emit(ev: str, **fields: Any) -> None:
    fields["ev"] = ev
    fields["t"] = time.monotonic()
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


class Member:
    def __init__(self, bus: LocalBus, name: str) -> None:
        self.bus = bus
        self.name = name
        self.channels: dict[str, BroadcastChannel] = {}
        self.recv: dict[str, dict[str, Any]] = {}  # "<channel>/<sender>" -> stats
        self.counters: dict[str, int] = {}
        self.expect: dict[str, int] = {}
        self.stream: asyncio.Task[None] | None = None
        self.errors: list[str] = []
        bus.leader_changed.connect(self.on_leader)
        bus.gap.connect(lambda epoch, seq: emit("gap", epoch=epoch, seq=seq))

    def on_leader(self, epoch: int, leader: str) -> None:
        emit(
            "leader",
            epoch=epoch,
            leader=leader,
            me=self.bus.member_id,
            is_leader=self.bus.is_leader,
        )

    def channel(self, name: str) -> BroadcastChannel:
        if name not in self.channels:
            ch = BroadcastChannel(name, bus=self.bus)
            ch.add_listener("message", self.on_message)
            ch.add_listener(
                "messageerror", lambda ev: emit("messageerror", ch=name, error=ev.error)
            )
            self.channels[name] = ch
        return self.channels[name]

    def on_message(self, ev: MessageEvent) -> None:
        data = ev.data
        if not isinstance(data, dict) or "tag" not in data:
            emit("message", ch=ev.target.name, data=data, seq=ev.seq, sender=ev.sender)
            return
        key = f"{ev.target.name}/{data['tag']}"
        st = self.recv.get(key)
        i = data["i"]
        if st is None:
            st = self.recv[key] = {"first": i, "last": i, "count": 1, "bad": 0}
        else:
            if i != st["last"] + 1:
                st["bad"] += 1
                if len(self.errors) < 20:
                    self.errors.append(f"{key}: got {i} after {st['last']}")
            st["last"] = max(st["last"], i)
            st["count"] += 1
        if key in self.expect and st["last"] >= self.expect[key]:
            del self.expect[key]
            if not self.expect:
                emit("complete")

    def post(self, ch: str, tag: str) -> int:
        key = f"{ch}/{tag}"
        i = self.counters[key] = self.counters.get(key, 0) + 1
        self.channel(ch).post_message({"tag": tag, "i": i, "pad": "x" * 16})
        return i

    async def run_stream(self, ch: str, every: float) -> None:
        while True:
            self.post(ch, self.name)
            await asyncio.sleep(every)

    async def handle(self, cmd: dict[str, Any]) -> bool:
        op = cmd["op"]
        if op == "channel":
            self.channel(cmd["ch"])
        elif op == "post":
            last = 0
            for k in range(cmd["n"]):
                last = self.post(cmd["ch"], cmd.get("tag", self.name))
                if k % cmd.get("batch", 200) == 0:
                    await asyncio.sleep(0)
            emit("posted", ch=cmd["ch"], last=last)
        elif op == "send":
            self.channel(cmd["ch"]).post_message(cmd["data"])
            emit("sent")
        elif op == "expect":
            self.expect = {
                k: v for k, v in cmd["counts"].items() if self.recv.get(k, {}).get("last", 0) < v
            }
            if not self.expect:
                emit("complete")
        elif op == "stream":
            self.channel(cmd["ch"])
            self.stream = asyncio.create_task(self.run_stream(cmd["ch"], cmd["every"]))
            emit("streaming")
        elif op == "stop_stream":
            if self.stream is not None:
                self.stream.cancel()
            emit("stopped", counters=self.counters)
        elif op == "drain":
            session = self.bus._session
            if session is not None:
                with contextlib.suppress(TimeoutError):
                    await self.bus.wait_for(lambda: not session.outbox, cmd.get("timeout", 10))
            emit("drained", outbox=len(session.outbox) if session else 0)
        elif op == "stats":
            emit(
                "stats",
                recv=self.recv,
                counters=self.counters,
                errors=self.errors,
                member=self.bus.member_id,
                epoch=self.bus.epoch,
                leader=self.bus.is_leader,
                members=self.bus.members(),
            )
        elif op == "provide":
            value = cmd["value"]
            self.bus.set_state_provider(cmd["name"], lambda: value)
            emit("providing")
        elif op == "request_state":
            got = await self.bus.request_state(cmd["name"], timeout=cmd.get("timeout", 2.0))
            emit("state", value=got)
        elif op == "step_down":
            await self.bus.step_down()
            emit("stepped_down", leader=self.bus.is_leader, epoch=self.bus.epoch)
        elif op == "force_leader":
            ok = await self.bus.force_leader()
            emit("forced", ok=ok, epoch=self.bus.epoch)
        elif op == "exit":
            await self.bus.close()
            emit("closed")
            return False
        else:
            emit("error", message=f"unknown op {op}")
        return True


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scope", required=True)
    ap.add_argument("--runtime-dir", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--channels", default="")
    args = ap.parse_args()
    bus = await LocalBus.open(args.scope, runtime_dir=args.runtime_dir)
    member = Member(bus, args.name)
    for ch in filter(None, args.channels.split(",")):
        member.channel(ch)
    emit(
        "ready",
        member=bus.member_id,
        pid=os.getpid(),
        is_leader=bus.is_leader,
        epoch=bus.epoch,
        cross_process=bus.cross_process,
    )
    if bus.is_leader:
        emit("leader", epoch=bus.epoch, leader=bus.member_id, me=bus.member_id, is_leader=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break
        if not await member.handle(json.loads(line)):
            break
    await bus.close()


if __name__ == "__main__":
    asyncio.run(main())
