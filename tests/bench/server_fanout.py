"""Benchmark: publish→receive latency of the sync server's SSE feed with N subscribers.

Each change is a real ``POST /conversations/{id}/messages`` (durable: SQLite fsync per commit),
fanned out to N SSE subscribers (10 devices per user, users all members of one conversation).
The same figures are measured, in the same run, for a naive in-memory sse-starlette broadcaster
(a dict of queues, no persistence). Also reports server memory per idle SSE connection.

    python tests/bench/server_fanout.py [--subscribers 1,100,1000] [--messages 60]

Loopback only; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from server.auth import hash_password, now_ms  # noqa: E402
from server.storage import SQLiteStorage  # noqa: E402

DEVICES_PER_USER = 10
EXTRA_SERVER_ARGS = os.environ.get("CONCORD_BENCH_SERVER_ARGS", "").split()
MARK = re.compile(rb"bench-(\d+)-(\d+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def wait_http(url: str) -> None:
    deadline = time.monotonic() + 20
    async with httpx.AsyncClient() as c:
        while time.monotonic() < deadline:
            try:
                await c.get(url)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


class Sink:
    """Receipt times per message; an event fires when all ``expected`` subscribers have it."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.times: dict[int, list[float]] = {}
        self.complete: dict[int, asyncio.Event] = {}

    def event(self, i: int) -> asyncio.Event:
        return self.complete.setdefault(i, asyncio.Event())

    def record(self, i: int, t: float) -> None:
        got = self.times.setdefault(i, [])
        got.append(t)
        if len(got) >= self.expected:
            self.event(i).set()


class Subscriber:
    """A raw SSE client: HTTP/1.1 over asyncio streams, looks only for the bench marker."""

    def __init__(self, port: int, path: str, token: str | None, sink: Sink):
        self.port, self.path, self.token, self.sink = port, path, token, sink
        self.ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def run(self, run_id: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        auth = f"Authorization: Bearer {self.token}\r\n" if self.token else ""
        writer.write(
            f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        await writer.drain()
        buf = b""
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    return
                now = time.perf_counter()
                if not self.ready.is_set() and b"\r\n\r\n" in chunk:
                    if not chunk.startswith(b"HTTP/1.1 200"):
                        raise RuntimeError(f"stream refused: {chunk[:80]!r}")
                    self.ready.set()
                buf = buf[-64:] + chunk
                for m in MARK.finditer(buf):
                    if int(m.group(1)) == run_id:
                        self.sink.record(int(m.group(2)), now)
                buf = buf[-64:]
        finally:
            writer.close()


async def measure(
    port: int, path: str, tokens: list[str | None], publish, n_messages: int, run_id: int
) -> tuple[list[float], int]:
    """Open one subscriber per token, publish n messages one after another, return latencies."""
    sink = Sink(len(tokens))
    subs = [Subscriber(port, path, t, sink) for t in tokens]
    for s in subs:
        s.task = asyncio.create_task(s.run(run_id))
    await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in subs)), 60)
    await asyncio.sleep(0.3)  # let the server finish each stream's catch-up before timing
    latencies: list[float] = []
    lost = 0
    for i in range(n_messages):
        t0 = time.perf_counter()
        await publish(f"bench-{run_id}-{i}")
        try:
            await asyncio.wait_for(sink.event(i).wait(), 10)
        except TimeoutError:
            pass
        got = sink.times.get(i, [])
        lost += len(subs) - len(got)
        latencies.extend((t - t0) * 1000 for t in got)
    for s in subs:
        assert s.task is not None
        s.task.cancel()
    await asyncio.gather(*(s.task for s in subs if s.task), return_exceptions=True)
    return latencies, lost


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


async def bench_concord(counts: list[int], n_messages: int) -> dict[int, tuple]:
    data = Path(tempfile.mkdtemp(prefix="concord-bench-"))
    n_users = max(100, -(-max(counts) // DEVICES_PER_USER))  # 1000 idle streams for memory
    names = [f"u{i}" for i in range(n_users)]
    store = SQLiteStorage(data / "concord.db")
    await store.open()
    pw_hash = hash_password("pw")
    for name in names:
        await store.add_user(name, pw_hash, now_ms())
    await store.close()
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server.cli",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data),
            "--log-level",
            "warning",
            *EXTRA_SERVER_ARGS,
        ],
        cwd=ROOT,
    )
    results: dict[int, tuple] = {}
    try:
        base = f"http://127.0.0.1:{port}/api/v1"
        await wait_http(f"{base}/health")
        async with httpx.AsyncClient(base_url=base, timeout=30) as c:
            tokens = []
            for name in names:
                r = await c.post("/auth/token", json={"username": name, "password": "pw"})
                tokens.append(r.json()["access_token"])
            results[-1] = (await idle_memory(port, "/api/v1/events", tokens, proc.pid),)
            h = {"Authorization": f"Bearer {tokens[0]}"}
            for run_id, n in enumerate(counts):
                # One conversation per row whose members are exactly the subscribing users.
                members = names[: max(1, -(-n // DEVICES_PER_USER))]
                cid = str(uuid.uuid4())
                r = await c.post(
                    "/conversations",
                    headers=h,
                    json={"id": cid, "title": "bench", "members": members},
                )
                r.raise_for_status()

                async def publish(text: str, cid: str = cid) -> None:
                    resp = await c.post(
                        f"/conversations/{cid}/messages",
                        headers=h,
                        json={"id": str(uuid.uuid4()), "body": text},
                    )
                    resp.raise_for_status()

                subs = [tokens[i // DEVICES_PER_USER] for i in range(n)]
                lat, lost = await measure(port, "/api/v1/events", subs, publish, n_messages, run_id)
                results[n] = (lat, lost)
    finally:
        proc.terminate()
        proc.wait(15)
    return results


async def idle_memory(port: int, path: str, tokens: list, pid: int, n: int = 1000) -> float:
    """Server RSS growth per idle SSE connection (KiB), over n connections."""
    await asyncio.sleep(0.5)
    before = rss_kib(pid)
    sink = Sink(n)
    subs = [
        Subscriber(port, path, tokens[i // DEVICES_PER_USER % len(tokens)], sink) for i in range(n)
    ]
    for s in subs:
        s.task = asyncio.create_task(s.run(-1))
    await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in subs)), 60)
    await asyncio.sleep(1.0)
    after = rss_kib(pid)
    for s in subs:
        assert s.task is not None
        s.task.cancel()
    await asyncio.gather(*(s.task for s in subs if s.task), return_exceptions=True)
    return (after - before) / n


async def bench_naive(counts: list[int], n_messages: int) -> dict[int, tuple]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("_naive_broadcaster.py")), str(port)]
    )
    results: dict[int, tuple] = {}
    try:
        base = f"http://127.0.0.1:{port}"
        await wait_http(f"{base}/publish")
        results[-1] = (await idle_memory(port, "/events", [None], proc.pid),)
        async with httpx.AsyncClient(base_url=base, timeout=30) as c:

            async def publish(text: str) -> None:
                resp = await c.post("/publish", json={"id": str(uuid.uuid4()), "body": text})
                resp.raise_for_status()

            for run_id, n in enumerate(counts):
                lat, lost = await measure(port, "/events", [None] * n, publish, n_messages, run_id)
                results[n] = (lat, lost)
    finally:
        proc.terminate()
        proc.wait(15)
    return results


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subscribers", default="1,100,1000")
    ap.add_argument("--messages", type=int, default=60)
    args = ap.parse_args()
    counts = [int(x) for x in args.subscribers.split(",")]
    ours = await bench_concord(counts, args.messages)
    naive = await bench_naive(counts, args.messages)
    print(f"\nserver fan-out: {args.messages} messages per row, publish -> receive (ms)")
    print(
        f"{'subscribers':>11} | {'concord p50':>11} {'p99':>7} {'lost':>4} | "
        f"{'naive p50':>9} {'p99':>7} {'lost':>4} | {'p50 ratio':>9} {'p99 ratio':>9}"
    )
    for n in counts:
        (lo, lost_o), (ln, lost_n) = ours[n], naive[n]
        o50, o99, n50, n99 = pct(lo, 50), pct(lo, 99), pct(ln, 50), pct(ln, 99)
        print(
            f"{n:>11} | {o50:>11.2f} {o99:>7.2f} {lost_o:>4} | {n50:>9.2f} {n99:>7.2f} "
            f"{lost_n:>4} | {o50 / n50:>9.2f} {o99 / n99:>9.2f}"
        )
    print(
        f"server memory per idle SSE connection (1000 open): concord {ours[-1][0]:.1f} KiB, "
        f"naive {naive[-1][0]:.1f} KiB"
    )
    print(
        f"(mean of all samples: concord {statistics.fmean(ours[counts[-1]][0]):.2f} ms at "
        f"{counts[-1]} subscribers)"
    )


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())
