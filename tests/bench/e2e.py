"""Benchmark: device→device latency through the whole stack, and polling while live.

A sends a message (outbox → POST → server commit → SSE) until B's cache has applied it and B's
``messages_added`` fired. A, B and the server are three processes, as two devices and a server
are (B reports arrival times on ``CLOCK_MONOTONIC``, which all processes of a host share).
Measured with 1 subscriber (B) and with 100 extra SSE subscribers on the same conversation.
Then both stay idle with a live stream and the server counts ``changes`` (poll) requests,
extrapolated to an hour.

    python tests/bench/e2e.py [--messages 200] [--idle 20]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from server_fanout import DEVICES_PER_USER, Sink, Subscriber, free_port, pct, wait_http  # noqa: E402

from core import Client, ClientConfig  # noqa: E402
from server.auth import hash_password, now_ms  # noqa: E402
from server.storage import SQLiteStorage  # noqa: E402

PW = "bench-pw"


async def setup_users(data: Path, names: list[str]) -> None:
    store = SQLiteStorage(data / "concord.db")
    await store.open()
    digest = hash_password(PW)
    for name in names:
        await store.add_user(name, digest, now_ms())
    await store.close()


async def changes_requests(base: str, token: str) -> float:
    async with httpx.AsyncClient() as c:
        text = (await c.get(f"{base}/metrics", headers={"Authorization": f"Bearer {token}"})).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("concord_http_request_duration_seconds_count") and (
            'route="/api/v1/changes"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


class Device:
    """Device B in a process of its own: a ``Client`` that reports each arrived message."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.arrived: dict[str, int] = {}
        self.changed = asyncio.Event()
        self.lines: asyncio.Queue[str] = asyncio.Queue()
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, url: str, data: Path, runtime: Path) -> Device:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--device",
            url,
            str(data),
            str(runtime),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
        )
        device = cls(proc)
        line = await asyncio.wait_for(device.lines.get(), 30)
        if line != "live":
            raise RuntimeError(f"device B did not go live: {line!r}")
        return device

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode().strip()
            kind, _, rest = line.partition(" ")
            if kind == "arrived":
                for item in rest.split():
                    mid, _, t = item.partition("@")
                    self.arrived.setdefault(mid, int(t))
                self.changed.set()
            else:
                await self.lines.put(line)

    async def wait_for(self, mid: str, timeout: float = 10) -> int:
        deadline = time.monotonic() + timeout
        while mid not in self.arrived:
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), max(0.01, deadline - time.monotonic()))
        return self.arrived[mid]

    async def stop(self) -> str:
        """Close B's client; returns its sync state at that moment."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        state = await asyncio.wait_for(self.lines.get(), 30)
        await self.proc.wait()
        self.reader.cancel()
        return state


async def device_main(url: str, data: str, runtime: str) -> None:
    b = await Client.open(ClientConfig(url, Path(data), "bob", PW, runtime_dir=Path(runtime)))

    def on_added(_conversation_id: str, messages: list) -> None:
        t = time.perf_counter_ns()
        ids = " ".join(f"{m.id}@{t}" for m in messages if m.seq is not None)
        if ids:
            sys.stdout.write(f"arrived {ids}\n")
            sys.stdout.flush()

    b.events.messages_added.connect(on_added)
    for _ in range(1000):
        if b.status.state == "live":
            break
        await asyncio.sleep(0.01)
    print(b.status.state, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until A is done
    print(b.status.state, flush=True)
    await b.close()


async def latency_run(a: Client, b: Device, cid: str, n: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter_ns()
        msg = await a.send_message(cid, f"e2e {i}")
        out.append((await b.wait_for(msg.id) - t0) / 1e6)
    return out


async def cold_open(n: int = 10_000, runs: int = 5) -> list[float]:
    """Time ``Client.open`` (cache load, model, bus) with ``n`` cached conversations."""
    from core import protocol as p
    from core.store import LocalStore

    tmp = Path(tempfile.mkdtemp(prefix="concord-open-"))
    cfg = ClientConfig(
        "http://127.0.0.1:9", tmp / "data", "alice", runtime_dir=tmp / "run", sync=False
    )
    store = LocalStore(Path(cfg.data_dir) / "profiles" / cfg.profile_key / "cache.db")
    convs = [
        p.Conversation(
            id=f"00000000-0000-4000-8000-{i:012d}",
            title=f"Conversation {i}",
            pinned=i % 50 == 0,
            version=1,
            creator="alice",
            members=["alice", "bob"],
            created_at=i,
            updated_at=i,
            message_count=i % 7,
            read_seq=0,
            unread=i % 7,
        )
        for i in range(n)
    ]
    store.apply_snapshot(p.Snapshot(epoch=1, head=n, conversations=convs))
    store.close()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        client = await Client.open(cfg)
        times.append((time.perf_counter() - t0) * 1000)
        assert len(client.conversations()) == n
        await client.close()
    return times


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--idle", type=float, default=20.0)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="concord-e2e-"))
    (tmp / "server").mkdir()
    extra_users = [f"x{i}" for i in range(100 // DEVICES_PER_USER)]
    await setup_users(tmp / "server", ["alice", "bob", *extra_users])
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(tmp / "server"),
        "--log-level",
        "warning",
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_http(f"{url}/api/v1/health")
        a = await Client.open(ClientConfig(url, tmp / "a", "alice", PW, runtime_dir=tmp / "run"))
        b = await Device.start(url, tmp / "b", tmp / "run")
        for _ in range(500):
            if a.status.state == "live":
                break
            await asyncio.sleep(0.01)
        conv = await a.create_conversation("bench", ["bob", *extra_users])
        await a.wait_synced(10)
        await latency_run(a, b, conv.id, 20)  # warm-up (the first waits for B to see it)
        one = await latency_run(a, b, conv.id, args.messages)

        async with httpx.AsyncClient(base_url=url + "/api/v1") as c:
            tokens = []
            for name in extra_users:
                r = await c.post("/auth/token", json={"username": name, "password": PW})
                tokens.append(r.json()["access_token"])
        sink = Sink(10**9)
        subs = [
            Subscriber(port, "/api/v1/events", tokens[i // DEVICES_PER_USER], sink)
            for i in range(100)
        ]
        for s in subs:
            s.task = asyncio.create_task(s.run(-1))
        await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in subs)), 30)
        hundred = await latency_run(a, b, conv.id, args.messages)
        for s in subs:
            s.task.cancel()

        token = a.credentials.access_token or ""
        before = await changes_requests(url + "/api/v1", token)
        t0 = time.monotonic()
        await asyncio.sleep(args.idle)
        polls = await changes_requests(url + "/api/v1", token) - before
        per_hour = polls * 3600 / (time.monotonic() - t0)
        live = (a.status.state, await b.stop())
        await a.close()
    finally:
        proc.terminate()
        await proc.wait()

    print(
        f"\ndevice -> device latency (A sends; B's cache applied and notified), ms, "
        f"{args.messages} messages each"
    )
    print(
        f"  1 subscriber:            p50 {pct(one, 50):6.2f}  p99 {pct(one, 99):6.2f}  "
        f"max {max(one):6.2f}"
    )
    print(
        f"  +100 extra subscribers:  p50 {pct(hundred, 50):6.2f}  p99 {pct(hundred, 99):6.2f}  "
        f"max {max(hundred):6.2f}"
    )
    opens = await cold_open()
    print(
        f"Client.open with 10,000 cached conversations: median {sorted(opens)[2]:.1f} ms, "
        f"max {max(opens):.1f} ms over {len(opens)} opens"
    )
    print(
        f"poll requests while live: {polls:.0f} in {args.idle:.0f} s idle = {per_hour:.1f}/hour "
        f"(states {live})"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--device"]:
        asyncio.run(device_main(*sys.argv[2:5]))
    else:
        asyncio.run(main())
