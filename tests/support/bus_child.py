"""Test-side handle on a bus member in its own process (``tests/support/_bus_member.py``)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


class Child:
    """A member process; ``events`` collects every JSON line it printed."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str) -> None:
        self.proc = proc
        self.name = name
        self.events: list[dict[str, Any]] = []
        self._new = asyncio.Event()
        self._reader = asyncio.create_task(self._read())
        self.member = ""
        self.spawned_at = 0.0

    @classmethod
    async def spawn(cls, scope: str, runtime_dir: str, name: str, channels: str = "") -> Child:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.support._bus_member",
            "--scope",
            scope,
            "--runtime-dir",
            runtime_dir,
            "--name",
            name,
            "--channels",
            channels,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=str(ROOT),
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        child = cls(proc, name)
        ready = await child.wait("ready", timeout=30)
        child.member = ready["member"]
        child.spawned_at = ready["t"]
        return child

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                break
            self.events.append(json.loads(line))
            self._new.set()
        self._new.set()

    def send(self, **cmd: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())

    async def wait(
        self,
        ev: str,
        pred: Callable[[dict[str, Any]], bool] | None = None,
        *,
        timeout: float = 10.0,
        start: int = 0,
    ) -> dict[str, Any]:
        """The first event named ``ev`` (from index ``start``) matching ``pred``."""
        async with asyncio.timeout(timeout):
            i = start
            while True:
                while i < len(self.events):
                    e = self.events[i]
                    i += 1
                    if e["ev"] == ev and (pred is None or pred(e)):
                        return e
                if self.proc.stdout is not None and self._reader.done():
                    raise EOFError(f"{self.name} exited (rc={self.proc.returncode})")
                self._new.clear()
                await self._new.wait()

    async def call(self, reply: str, timeout: float = 10.0, **cmd: Any) -> dict[str, Any]:
        start = len(self.events)
        self.send(**cmd)
        return await self.wait(reply, timeout=timeout, start=start)

    def kill(self) -> None:
        if self.proc.returncode is None:
            os.kill(self.proc.pid, signal.SIGKILL)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            try:
                self.send(op="exit")
                async with asyncio.timeout(5):
                    await self.proc.wait()
            except (TimeoutError, ConnectionError, RuntimeError):
                self.kill()
                await self.proc.wait()
        self._reader.cancel()
