"""UI test fixtures: async tests run on a qasync loop (asyncio driven by Qt's event loop, as in
the app), against a real server on 127.0.0.1 and real ``Client``s."""

from __future__ import annotations

import os
from typing import Any

import pytest
import qasync
from PySide6.QtWidgets import QApplication

# The same real server and real clients as the sync tests.
from tests.sync.conftest import PASSWORD, clients, live_server, wait_until

__all__ = ["PASSWORD", "clients", "live_server", "wait_until"]

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
