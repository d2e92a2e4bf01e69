"""Real processes for sync tests: the server (``concord-server serve``) and clients
(``tests/support/_client_proc.py``), each killable with SIGKILL."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "pw-for-tests"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProc:
    """``concord-server serve`` on a fixed loopback port, restartable on the same data."""

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        heartbeat: float = 1.0,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.data_dir, self.port, self.heartbeat = data_dir, port or free_port(), heartbeat
        self.extra = extra  # more ``serve`` flags (``--database``, ``--redis``, ...)
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> ServerProc:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "server.cli",
            "serve",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--heartbeat",
            str(self.heartbeat),
            "--log-level",
            "warning",
            *self.extra,
            cwd=ROOT,
        )
        deadline = time.monotonic() + 20
        async with httpx.AsyncClient() as c:
            while time.monotonic() < deadline:
                try:
                    if (await c.get(f"{self.url}/api/v1/health")).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError("server did not come up")

    async def kill(self) -> None:
        if self.proc and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()

    async def stop(self) -> None:
        if self.proc and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                await self.kill()

    async def metric(self, name: str, user: str = "alice", **labels: str) -> float:
        async with httpx.AsyncClient(base_url=self.url + "/api/v1") as c:
            r = await c.post("/auth/token", json={"username": user, "password": PASSWORD})
            h = {"Authorization": f"Bearer {r.json()['access_token']}"}
            text = (await c.get("/metrics", headers=h)).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total


class ClientProc:
    """A client process; ``call`` sends a command and awaits its answer."""

    _ids = itertools.count(1)

    def __init__(
        self, server_url: str, data: Path, runtime: Path, user: str, password: str | None = PASSWORD
    ) -> None:
        self.args = [
            "--server",
            server_url,
            "--data",
            str(data),
            "--runtime",
            str(runtime),
            "--user",
            user,
        ]
        if password:
            self.args += ["--password", password]
        self.proc: asyncio.subprocess.Process | None = None
        self.events: list[dict[str, Any]] = []
        self._answers: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        self._arrived = asyncio.Event()  # set (and replaced) on every event line

    async def start(self) -> ClientProc:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.support._client_proc",
            *self.args,
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._reader = asyncio.create_task(self._read())
        await asyncio.wait_for(self.ready.wait(), 20)
        return self

    async def _read(self) -> None:
        assert self.proc and self.proc.stdout
        while line := await self.proc.stdout.readline():
            msg = json.loads(line)
            if "event" in msg:
                self.events.append(msg)
                self._arrived.set()
                self._arrived = asyncio.Event()
                if msg["event"] == "ready":
                    self.ready.set()
            elif msg.get("id") in self._answers:
                self._answers.pop(msg["id"]).set_result(msg)
        for fut in self._answers.values():
            fut.set_exception(ConnectionError("client process ended"))

    async def wait_event(self, name: str, timeout: float = 10, **match: Any) -> dict[str, Any]:
        """The first event ``name`` whose fields equal ``match`` (waiting for it if need be)."""
        async with asyncio.timeout(timeout):
            while True:
                arrived = self._arrived
                for msg in self.events:
                    if msg["event"] == name and all(msg.get(k) == v for k, v in match.items()):
                        return msg
                await arrived.wait()

    async def call(self, op: str, timeout: float = 30, **args: Any) -> Any:
        assert self.proc and self.proc.stdin
        cid = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._answers[cid] = fut
        self.proc.stdin.write(json.dumps({"op": op, "id": cid, **args}).encode() + b"\n")
        await self.proc.stdin.drain()
        answer = await asyncio.wait_for(fut, timeout)
        if not answer["ok"]:
            raise RuntimeError(answer["error"])
        return answer["result"]

    async def kill(self) -> None:
        if self.proc and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()
        if self._reader:
            await asyncio.gather(self._reader, return_exceptions=True)

    async def quit(self) -> None:
        if self.proc and self.proc.returncode is None:
            assert self.proc.stdin
            self.proc.stdin.write(b'{"op": "quit"}\n')
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                await self.kill()
        if self._reader:
            await asyncio.gather(self._reader, return_exceptions=True)
