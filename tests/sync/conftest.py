"""Fixtures for end-to-end sync tests: a real server on 127.0.0.1 and real ``Client``s."""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from core import Client, ClientConfig
from core.engine import EngineConfig
from server.app import create_app
from server.auth import hash_password, now_ms
from server.runner import ServerThread
from server.settings import Settings
from server.storage import SQLiteStorage

PASSWORD = "pw-for-tests"
USERS = ("alice", "bob", "carol")
FAST = EngineConfig(
    backoff_base_s=0.05, backoff_cap_s=1.0, poll_after_s=0.5, poll_min_s=0.3, poll_max_s=2.0
)


async def wait_until(
    predicate: Callable[[], Any],
    timeout: float = 10.0,
    what: str = "condition",
    detail: Callable[[], Any] | None = None,
) -> Any:
    """Poll a sync or async predicate; bounded in time and count."""
    deadline = time.monotonic() + timeout
    last: Any = None
    for _ in range(int(timeout / 0.01) + 2):
        last = predicate()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.01)
    extra = f"; {detail()!r}" if detail is not None else ""
    raise AssertionError(f"timed out waiting for {what} (last {last!r}){extra}")


def add_users(data_dir: Path, names: tuple[str, ...] = USERS) -> None:
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
        """Every session of every account revoked, as an admin would: the next refresh fails."""
        with sqlite3.connect(self.data_dir / "concord.db") as db:
            db.execute("DELETE FROM tokens")
        self.app.state.ctx.tokens._cache.clear()

    def open_streams(self) -> int:
        return self.app.state.ctx.hub.total


@pytest.fixture
def live_server(tmp_path: Path):  # type: ignore[no-untyped-def]
    data = tmp_path / "server"
    data.mkdir()
    add_users(data)
    server = LiveServer(data, heartbeat_s=1.0)
    yield server
    server.stop()


@pytest.fixture
async def clients(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Client]]]:
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


def client_state(client: Client) -> dict[str, tuple]:
    return {
        v.id: (
            v.title,
            v.pinned,
            v.version,
            tuple(sorted(v.members)),
            v.message_count,
            v.unread,
            tuple(m.id for m in client.messages(v.id)),
        )
        for v in client.conversations()
    }


def server_state(snap: dict[str, Any]) -> dict[str, tuple]:
    return {
        c["id"]: (
            c["title"],
            c["pinned"],
            c["version"],
            tuple(sorted(c["members"])),
            c["message_count"],
            c["unread"],
            tuple(m["id"] for m in snap["messages"].get(c["id"], [])),
        )
        for c in snap["conversations"]
    }


async def assert_converged(server: LiveServer, clients: list[Client]) -> None:
    """Every client shows exactly its user's server state and applied no change twice."""
    users = sorted({c.me for c in clients})
    want = {u: server_state(await server.snapshot(u)) for u in users}
    for c in clients:
        await wait_until(
            lambda c=c: client_state(c) == want[c.me],
            timeout=30,
            what=f"{c.me}'s client to equal the server",
        )
        seqs = [seq for seq, _, _ in c.store.applied_log()]
        assert len(seqs) == len(set(seqs)), "a change was applied twice"
        assert seqs == sorted(seqs)
    assert any(want.values()), "the run must leave some conversations"
