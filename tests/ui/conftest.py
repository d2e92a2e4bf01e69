"""UI test fixtures: async tests run on a qasync loop (asyncio driven by Qt's event loop, as in
the app), against a real server on 127.0.0.1 and real ``Client``s."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from typing import Any

import pytest
import qasync
from PySide6.QtWidgets import QApplication

from desktop.loop import QtEventLoop

# The same real server and real clients as the sync tests.
from tests.sync.conftest import PASSWORD, clients, live_server, wait_until

__all__ = ["PASSWORD", "clients", "live_server", "wait_until"]

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _gc_on_the_gui_thread() -> Iterator[None]:
    """Collect garbage here, on the GUI thread, and nowhere else during a test.

    Each async test runs on a new qasync loop. If a finished loop's QObjects are collected by
    whichever thread happens to allocate (a server thread, say), Qt is left with a timer it
    cannot stop ("Timers cannot be stopped from another thread") and a later event loop
    crashes on it (seen in gdb: QTimerInfoList::activateTimers)."""
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.collect()
        if enabled:
            gc.enable()


@pytest.fixture(scope="session")
def qapp_cls():  # type: ignore[no-untyped-def]
    return QApplication


def _qasync_loop() -> qasync.QEventLoop:
    app = QApplication.instance() or QApplication([])
    # As in the app: closing the last window (a dialog, say) must not end the event loop.
    app.setQuitOnLastWindowClosed(False)
    return QtEventLoop(app)  # the app's own loop class


def pytest_asyncio_loop_factories(config: Any, item: Any) -> dict[str, Any]:
    """Async tests under tests/ui run on a qasync loop: asyncio driven by Qt's event loop."""
    return {"qasync": _qasync_loop}
