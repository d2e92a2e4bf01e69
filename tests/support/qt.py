"""What the Qt test folders (``tests/ui``, ``tests/desktop``) share: the app's qasync event loop,
the garbage-collection discipline that keeps Qt objects on the GUI thread, and ``focus``.

Not a plugin: each of those folders' conftests opts in by importing ``gc_on_the_gui_thread`` and
setting ``pytest_asyncio_loop_factories = qasync_loop_factories``, so no other folder runs on a
Qt loop.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
import qasync
from PySide6.QtWidgets import QApplication

from desktop.loop import QtEventLoop

from .waiting import wait_until

if TYPE_CHECKING:
    from ui.conversation_pane import ConversationPane


def qasync_loop() -> qasync.QEventLoop:
    """A new event loop of the app's own class: asyncio driven by Qt's event loop."""
    app = QApplication.instance() or QApplication([])
    # As in the app: closing the last window (a dialog, say) must not end the event loop.
    app.setQuitOnLastWindowClosed(False)
    return QtEventLoop(app)


@contextlib.contextmanager
def garbage_collected_here() -> Iterator[None]:
    """Collect garbage here, on the GUI thread, and nowhere else while the block runs.

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


async def focus(pane: ConversationPane) -> None:
    """Make ``pane``'s window the active one with the keyboard in its composer."""
    pane.activateWindow()
    await wait_until(pane.isActiveWindow, what="pane window active")
    pane.composer.setFocus()
    await wait_until(pane.composer.hasFocus, what="composer focused")


@pytest.fixture(autouse=True)
def gc_on_the_gui_thread() -> Iterator[None]:
    """Garbage is collected on the GUI thread only, while each test runs (why: see
    :func:`garbage_collected_here`). A folder whose tests drive Qt imports it into its conftest."""
    with garbage_collected_here():
        yield


def qasync_loop_factories(config: Any, item: Any) -> dict[str, Any]:
    """The ``pytest_asyncio_loop_factories`` hook for a folder whose async tests run on the app's
    qasync loop (asyncio driven by Qt's event loop); per folder, so other tests keep asyncio's."""
    return {"qasync": qasync_loop}
