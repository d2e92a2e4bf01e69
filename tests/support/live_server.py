"""A real sync server on 127.0.0.1 (in a thread) and real ``Client``s against it.

A pytest plugin (listed in ``tests/conftest.py``): the ``live_server`` and ``clients`` fixtures
serve the sync, UI and desktop tests alike. ``LiveServer``, ``add_users``, ``PASSWORD`` and
``FAST`` are importable for tests that start servers of their own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core import Client, ClientConfig
from core.engine import EngineConfig
from server import admin
from server.app import create_app
from server.auth import hash_password, now_ms
from server.runner import ServerThread
from server.settings import Settings
from server.storage import SQLiteStorage

PASSWORD = "pw-for-tests"
USERS = ("alice", "bob", "carol")
# Short back-offs and polls, so that tests of reconnects and fallbacks run in seconds.
FAST = EngineConfig(
    backoff_base_s=0.05, backoff_cap_s=1.0, poll_after_s=0.5, poll_min_s=0.3, poll_max_s=2.0
)

MakeClient = Callable[..., Awaitable[Client]]


def add_users(data_dir: Path, names: tuple[str, ...] = USERS) -> None:
    """Create the accounts ``names`` (password ``PASSWORD``) in the database under ``data_dir``."""

    async def run() -> None:
        store = SQLiteStorage(data_dir / "concord.db")
        await store.open()
        digest = hash_password(PASSWORD)
        for name in names:
            await store.add_user(name, digest, now_ms())
        await store.close()

    # Callable from sync fixtures and from async tests alike: run on a thread of its own.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


class LiveServer:
    """The server app on a thread of this process; it can be stopped and restarted in place."""

    def __init__(self, data_dir: Path, **settings: Any) -> None:
        self.data_dir = data_dir
        self.settings = Settings(data_dir=data_dir, **settings)
        self.app = create_app(self.settings)
        self.thread = ServerThread(self.app).start()
        self.url = self.thread.url
        self.running = True

    def stop(self) -> None:
        if self.running:
            self.thread.stop()
            self.running = False

    def restart(self) -> None:
        """A fresh server process-alike on the same data and the same port."""
        self.stop()
        self.app = create_app(self.settings)
        self.thread = ServerThread(self.app, port=self.thread.port).start()
        self.running = True

    async def snapshot(self, user: str) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.url + "/api/v1") as c:
            r = await c.post("/auth/token", json={"username": user, "password": PASSWORD})
            h = {"Authorization": f"Bearer {r.json()['access_token']}"}
            return (await c.get("/snapshot", params={"messages": 200}, headers=h)).json()

    def revoke_sessions(self) -> None:
        """Every session of every account revoked, as an admin would (``concord-server user
        revoke-sessions``, beside the running server): the next refresh fails, and the server
        stops trusting access tokens within ``token_recheck_s``."""
        db = self.data_dir / "concord.db"
        with sqlite3.connect(db) as conn:
            names = [r[0] for r in conn.execute("SELECT username FROM users")]
        for name in names:
            admin.revoke_sessions(db, name)

    def open_streams(self) -> int:
        return self.app.state.ctx.hub.total


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A started server with alice, bob and carol; stopped after the test."""
    data = tmp_path / "server"
    data.mkdir()
    add_users(data)
    server = LiveServer(data, heartbeat_s=1.0)
    yield server
    server.stop()


@pytest.fixture
async def clients(tmp_path: Path) -> AsyncIterator[MakeClient]:
    """``await clients(server_url, user, device, **config)``: an open ``Client`` (closed after
    the test), with ``FAST`` timings and the apply log on unless the test says otherwise."""
    opened: list[Client] = []

    async def make(server_url: str, user: str, device: str, **kw: Any) -> Client:
        cfg = ClientConfig(
            server_url=server_url,
            data_dir=tmp_path / f"{user}-{device}",
            username=user,
            password=kw.pop("password", PASSWORD),
            runtime_dir=tmp_path / "run",
            engine=kw.pop("engine", FAST),
            apply_log=True,
            heartbeat_s=kw.pop("heartbeat_s", 1.0),
            **kw,
        )
        client = await Client.open(cfg)
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.close()
