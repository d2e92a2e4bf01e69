"""UI test fixtures: async tests run on a qasync loop (asyncio driven by Qt's event loop, as in
the app), against a real server on 127.0.0.1 and real ``Client``s."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import qasync
from PySide6.QtWidgets import QApplication

from core import Client, ClientConfig
from tests.sync.conftest import FAST, PASSWORD, LiveServer, add_users, wait_until
from ui.bridge import ClientBridge

__all__ = ["PASSWORD", "wait_until"]

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session")
def qapp_cls():  # type: ignore[no-untyped-def]
    return QApplication


def _qasync_loop() -> qasync.QEventLoop:
    app = QApplication.instance() or QApplication([])
    return qasync.QEventLoop(app)


def pytest_asyncio_loop_factories(config: Any, item: Any) -> dict[str, Any]:
    """Async tests under tests/ui run on a qasync loop: asyncio driven by Qt's event loop."""
    return {"qasync": _qasync_loop}


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
    opened: list[tuple[Client, ClientBridge]] = []

    async def make(server_url: str, user: str, device: str, **kw: Any) -> Client:
        cfg = ClientConfig(
            server_url=server_url,
            data_dir=tmp_path / f"{user}-{device}",
            username=user,
            password=kw.pop("password", PASSWORD),
            runtime_dir=tmp_path / "run",
            engine=kw.pop("engine", FAST),
            heartbeat_s=1.0,
            **kw,
        )
        client = await Client.open(cfg)
        opened.append((client, None))  # type: ignore[arg-type]
        return client

    yield make
    for client, _ in opened:
        await client.close()
