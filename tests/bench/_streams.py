"""Shared parts of the stream benchmarks (``idle_streams.py``, ``broadcast.py``): a data dir
with many users and signed-in devices made directly in storage (no scrypt per user, no sign-in
throttle), one real ``concord-server serve`` process, raw SSE clients, and the server
process's own CPU and RSS read from ``/proc``.

Loopback only; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import resource
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from server.auth import hash_password, now_ms, token_hash  # noqa: E402
from server.storage import NewSession, SQLiteStorage  # noqa: E402
from server.storage.factory import storage_for  # noqa: E402

HOUR_MS = 3_600_000
CLK_TCK = os.sysconf("SC_CLK_TCK")


def raise_nofile() -> int:
    """Lift this process's soft open-files limit to the hard one; the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (all its threads), in seconds."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat(5)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@dataclass
class Deployment:
    data: Path
    usernames: list[str]
    tokens: list[str]  # one access token per device (session)
    owner: list[int]  # device index -> user index


async def make_data(n_users: int, devices_per_user: int, database: str = "") -> Deployment:
    """Users ``u0…``, each with ``devices_per_user`` live sessions (access tokens valid 2 h),
    written straight into a fresh SQLite store (or into ``database``, an empty
    ``postgresql://`` database)."""
    data = Path(tempfile.mkdtemp(prefix="concord-bench-"))
    store = (
        storage_for(database)
        if database
        else SQLiteStorage(data / "concord.db", synchronous_full=False)
    )
    await store.open()
    pw = hash_password("pw")  # one hash for all: nobody signs in with it
    now = now_ms()
    names = [f"u{i}" for i in range(n_users)]
    ids = [await store.add_user(name, pw, now) for name in names]
    tokens: list[str] = []
    owner: list[int] = []
    for d in range(devices_per_user):
        for u, user_id in enumerate(ids):
            access = secrets.token_urlsafe(24)
            refresh = token_hash(f"r-{u}-{d}")
            pair = NewSession(refresh, now + 24 * HOUR_MS, token_hash(access), now + 2 * HOUR_MS)
            await store.start_session(secrets.token_urlsafe(12), user_id, pair, now)
            tokens.append(access)
            owner.append(u)
    await store.close()
    return Deployment(data, names, tokens, owner)


class Server:
    """One ``concord-server serve`` process on loopback (fsync on, as deployed)."""

    def __init__(
        self, data: Path, heartbeat: float, extra: list[str] | None = None, streams: int = 11_000
    ) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "server.cli",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(data),
                "--heartbeat",
                str(heartbeat),
                "--access-ttl",
                "7200",
                "--max-connections",
                str(max(12_000, streams + 1_000)),
                "--log-level",
                "warning",
                *(extra or []),
                *os.environ.get("CONCORD_BENCH_SERVER_ARGS", "").split(),
            ],
            cwd=ROOT,
        )
        self.pid = self.proc.pid
        self.base = f"http://127.0.0.1:{self.port}/api/v1"

    async def wait_up(self) -> None:
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient() as c:
            while time.monotonic() < deadline:
                try:
                    if (await c.get(f"{self.base}/health")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError("server did not come up")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


class Stream(asyncio.Protocol):
    """A raw SSE client on one socket: counts heartbeats, hands data chunks to ``on_data``."""

    def __init__(
        self, request: bytes, on_data: Callable[[Stream, bytes, float], None] | None
    ) -> None:
        self.request = request
        self.on_data = on_data
        self.ready = asyncio.get_running_loop().create_future()
        self.heartbeats = 0
        self.transport: asyncio.Transport | None = None
        self.tail = b""
        self.seen = -1  # for the caller's markers

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if not self.ready.done():
            if not data.startswith(b"HTTP/1.1 200"):
                self.ready.set_exception(RuntimeError(f"stream refused: {data[:120]!r}"))
                return
            self.ready.set_result(None)
        chunk = self.tail + data  # a marker may straddle two reads
        self.heartbeats += chunk.count(b"\n: hb ") - self.tail.count(b"\n: hb ")
        if self.on_data is not None:
            self.on_data(self, chunk, now)
        self.tail = chunk[-64:]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(RuntimeError(f"stream closed before its head: {exc}"))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def new_marks(stream: Stream, chunk: bytes, mark: re.Pattern[bytes]) -> Iterator[int]:
    """The numbers of ``mark`` (one group) in ``chunk`` that ``stream`` has not seen yet (a chunk
    repeats the tail of the previous read), in order; advances ``stream.seen``."""
    for m in mark.finditer(chunk):
        i = int(m.group(1))
        if i > stream.seen:
            stream.seen = i
            yield i


async def open_streams(
    port: int,
    tokens: list[str],
    on_data: Callable[[Stream, bytes, float], None] | None = None,
    parallel: int = 200,
    timeout: float = 300.0,
) -> list[Stream]:
    """Open one stream per token (``parallel`` handshakes at a time) and wait for every head."""
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(parallel)

    async def one(token: str) -> Stream:
        req = (
            f"GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            "Accept: text/event-stream\r\n\r\n"
        ).encode()
        async with gate:
            _, stream = await loop.create_connection(
                lambda: Stream(req, on_data), "127.0.0.1", port
            )
            await stream.ready
            return stream

    return await asyncio.wait_for(asyncio.gather(*(one(t) for t in tokens)), timeout)


def install_uvloop() -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


def write_json(path: str, payload: dict[str, Any]) -> None:
    """A benchmark's summary for ``scale.py`` (nothing when ``path`` is empty); NaN as null."""
    if path:
        Path(path).write_text(json.dumps(_no_nan(payload), indent=1) + "\n")


def _no_nan(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_nan(v) for v in value]
    return value
