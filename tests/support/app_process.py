"""A real ``concord`` process (offscreen) whose output lines are kept with their arrival times,
and what the failover test and benchmark read from it: the embedded server's ``HOSTED`` line, the
sync ``STATUS`` lines, and the server's state (``server_snapshot``).

Each process logs its sync status (``status: <state> (<detail>) as <role> [sync epoch N]``) and
reads test commands from stdin (``CONCORD_TEST_HOOKS=stdin``, see desktop/testhook.py).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from core.credentials import Credentials
from core.http import ServerApi, TokenAuth
from desktop.embedded import mint_refresh_token
from desktop.profile import Profile

ROOT = Path(__file__).resolve().parents[2]
CONCORD = Path(sys.executable).parent / "concord"  # the installed entry point
LIMIT_S = 2.0
HOSTED = re.compile(r"embedded server hosted at (http://\S+) \(bus epoch (\d+)\)")
STATUS = re.compile(r"status: (\w+) \((.*)\) as (\w+) \[sync epoch (\d+)\]")


class App:
    """A ``concord`` process; its output lines are kept with their arrival times."""

    def __init__(
        self, tmp: Path, name: str, *args: str, session: dict[str, str] | None = None
    ) -> None:
        """``session``: the environment of a desktop session to run in (default: offscreen)."""
        self.name = name
        env = {
            **(session or os.environ),
            "QT_QPA_PLATFORM": (session or {}).get("QT_QPA_PLATFORM", "offscreen"),
            "CONCORD_LOG": "INFO",
            "CONCORD_TEST_HOOKS": "stdin",
            "CONCORD_DATA_DIR": str(tmp / "data"),
            "CONCORD_CONFIG_DIR": str(tmp / "config"),
            "CONCORD_RUNTIME_DIR": str(tmp / "run"),
            "PYTHONUNBUFFERED": "1",
        }
        exe = [str(CONCORD)] if CONCORD.exists() else [sys.executable, "-m", "desktop"]
        self.proc = subprocess.Popen(
            [*exe, *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[tuple[float, str]] = []
        self._new = threading.Condition()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout
        for line in self.proc.stdout:
            with self._new:
                self.lines.append((time.monotonic(), line))
                self._new.notify_all()
        with self._new:
            self.lines.append((time.monotonic(), "<exited>\n"))
            self._new.notify_all()

    def find(self, pattern: str | re.Pattern[str], after: float = 0.0, where=None):  # type: ignore[no-untyped-def]
        """(arrival time, match) of the first line after ``after`` that matches (and passes
        ``where``), or None."""
        with self._new:
            lines = list(self.lines)
        for t, line in lines:
            m = re.search(pattern, line)
            if t >= after and m and (where is None or where(m)):
                return t, m
        return None

    def last(self, pattern: str | re.Pattern[str]) -> tuple[float, re.Match[str]]:
        with self._new:
            lines = list(self.lines)
        for t, line in reversed(lines):
            if m := re.search(pattern, line):
                return t, m
        raise AssertionError(f"{self.name}: never logged {pattern!r}")

    def wait(self, pattern, after: float = 0.0, timeout: float = 30.0, where=None):  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        with self._new:
            while True:
                found = self.find(pattern, after, where)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or (self.lines and self.lines[-1][1] == "<exited>\n"):
                    break
                self._new.wait(left)
        tail = "".join(line for _, line in self.lines[-60:])
        raise AssertionError(f"{self.name}: no {pattern!r} within {timeout} s; output:\n{tail}")

    def send(self, command: str) -> None:
        assert self.proc.stdin
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def do(self, command: str, answer: str, after: float = 0.0) -> re.Match[str]:
        start = time.monotonic()
        self.send(command)
        return self.wait(answer, after=max(after, start))[1]

    def live_again(self, after: float) -> float:
        """When this process reported "live" again after the server went away at ``after``
        (the first status that is not "live", then the next that is)."""
        down_at, _ = self.wait(STATUS, after=after, where=lambda m: m[1] != "live")
        return self.wait(STATUS, after=down_at, where=lambda m: m[1] == "live")[0]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def start(
    apps: list[App], tmp: Path, name: str, *args: str, session: dict[str, str] | None = None
) -> App:
    app = App(tmp, name, *args, session=session)
    apps.append(app)  # killed at the end whatever happens
    app.wait("ready", timeout=60)
    app.wait(STATUS, where=lambda m: m[1] == "live")
    return app


def server_snapshot(tmp: Path, url: str):  # type: ignore[no-untyped-def]
    """What the embedded server at ``url`` holds, read as the profile's account."""
    profile = Profile.resolve(None, None, None, tmp / "data", tmp / "config")
    token = mint_refresh_token(profile.data_dir / "server", profile.username)

    async def read():  # type: ignore[no-untyped-def]
        api = ServerApi(url)
        tokens = TokenAuth(api, Credentials(profile.username), username=profile.username)
        try:
            tokens.access_token = (await api.refresh(token)).access_token
            return await api.snapshot(50)
        finally:
            await api.aclose()

    return asyncio.run(read())
