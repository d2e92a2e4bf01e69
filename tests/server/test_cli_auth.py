"""``concord-server serve`` with ``--metrics-token`` and ``--trusted-proxy``, as a real process."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from tests.support.server_cli import CLI, ENV, cli, free_port
from tests.support.waiting import wait_until


def test_bad_trusted_proxy_is_a_usage_error(tmp_path: Path) -> None:
    r = cli("serve", "--trusted-proxy", "not-an-address", "--data-dir", str(tmp_path))
    assert r.returncode == 2 and "not an address or network" in r.stderr


async def test_serve_takes_the_scrape_token_and_trusted_proxies(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert cli("add-user", "alice", "--data-dir", str(data), stdin="s3cret pass\n").returncode == 0
    port = free_port()
    proc = subprocess.Popen(
        [
            str(CLI),
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data),
            "--trusted-proxy",
            "127.0.0.0/8",
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**ENV, "CONCORD_METRICS_TOKEN": "scrape-me"},
    )
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:

            async def healthy() -> bool:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                try:
                    return (await client.get("/health")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(healthy, timeout=20, interval=0.05, what="the server to come up")
            assert (await client.get("/metrics")).status_code == 401  # even from loopback
            r = await client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
            assert r.status_code == 200 and "concord_password_checks_total" in r.text

            async def sign_in(name: str, address: str) -> int:
                r = await client.post(
                    "/auth/token",
                    json={"username": name, "password": "nope"},
                    headers={"X-Forwarded-For": address},
                )
                return r.status_code

            # Each forwarded client has its own 30 checks a minute, whatever the names.
            codes = [await sign_in(f"user{i}", "203.0.113.5") for i in range(31)]
            assert codes == [401] * 30 + [429]
            assert await sign_in("bob", "203.0.113.6") == 401  # not the proxy's budget
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)
        if proc.stdout:
            proc.stdout.close()
