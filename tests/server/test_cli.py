"""``concord-server`` as a real process: --version, add-user (password on stdin), serve, and a
graceful SIGTERM that says ``bye`` to open streams and exits 0."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path

import httpx

from server import __version__
from tests.support.server_cli import CLI, ENV, cli, free_port
from tests.support.sse import SSEStream
from tests.support.waiting import wait_until


def test_version() -> None:
    assert CLI.exists(), CLI
    r = cli("--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"concord-server {__version__}"


def test_add_user(tmp_path: Path) -> None:
    data = tmp_path / "data"
    r = cli("add-user", "alice", "--data-dir", str(data), stdin="s3cret pass\n")
    assert r.returncode == 0, r.stderr
    assert "added user alice" in r.stdout
    assert (data / "concord.db").exists()
    r = cli("add-user", "alice", "--data-dir", str(data), stdin="other\n")
    assert r.returncode == 1 and "already exists" in r.stderr
    r = cli("add-user", "bad name!", "--data-dir", str(data), stdin="pw\n")
    assert r.returncode == 2
    r = cli("add-user", "bob", "--data-dir", str(data), stdin="\n")
    assert r.returncode == 2 and "empty" in r.stderr


async def test_serve_sign_in_and_sigterm(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert cli("add-user", "alice", "--data-dir", str(data), stdin="s3cret pass\n").returncode == 0
    port = free_port()
    proc = subprocess.Popen(
        [str(CLI), "serve", "--port", str(port), "--data-dir", str(data), "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=ENV,
    )
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:

            async def healthy() -> bool:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                try:
                    r = await client.get("/health")
                except httpx.TransportError:
                    return False
                return r.status_code == 200 and r.json()["status"] == "ok"

            await wait_until(healthy, timeout=20, interval=0.05, what="the server to come up")
            r = await client.post("/auth/token", json={"username": "alice", "password": "nope"})
            assert r.status_code == 401
            r = await client.post(
                "/auth/token", json={"username": "alice", "password": "s3cret pass"}
            )
            assert r.status_code == 200, r.text
            auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
            assert (await client.get("/conversations", headers=auth)).status_code == 200

            req = client.build_request(
                "GET", "/events", headers=auth, timeout=httpx.Timeout(10, read=None)
            )
            streams = [SSEStream(await client.send(req, stream=True)) for _ in range(2)]
            try:
                for s in streams:
                    assert s.response.status_code == 200
                    await s.expect("hello")
                started = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                for s in streams:
                    bye = await s.expect("bye", timeout=5)
                    assert bye.json() == {"reason": "shutdown"}
                    assert bye.retry is not None and 1000 <= bye.retry <= 5000
                    await s.closed(timeout=5)
                code = await asyncio.to_thread(proc.wait, 10)
                output = proc.stdout.read().decode() if proc.stdout else ""
                assert code == 0, output
                assert time.monotonic() - started < 5
                assert "Traceback" not in output, output
            finally:
                for s in streams:
                    await s.aclose()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        if proc.stdout:
            proc.stdout.close()
