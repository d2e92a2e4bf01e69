"""UI test fixtures: async tests run on a qasync loop (asyncio driven by Qt's event loop, as in
the app), against a real server on 127.0.0.1 and real ``Client``s (the ``live_server`` and
``clients`` fixtures of ``tests.support.live_server``)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from core import Client
from tests.support.qt import gc_on_the_gui_thread, qasync_loop_factories  # noqa: F401 (fixture)
from tests.support.waiting import wait_until
from ui.bridge import ClientBridge
from ui.conversation_pane import ConversationPane

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


# Qt tests: garbage collected on the GUI thread, async tests on the qasync loop.
pytest_asyncio_loop_factories = qasync_loop_factories

Open = Callable[..., Awaitable[ConversationPane]]


@pytest.fixture
async def pane_opener(qtbot) -> AsyncIterator[Open]:  # type: ignore[no-untyped-def]
    """``await make(client, cid=None, *, size=(480, 320), active=False, **pane_kw)``: a pane in
    a top-level window of its own (like a pop-out) on ``client``, its bridge closed at the end.
    ``active`` waits until its window is the active one (focus-dependent tests)."""
    bridges: list[ClientBridge] = []

    async def make(
        client: Client,
        cid: str | None = None,
        *,
        size: tuple[int, int] = (480, 320),
        active: bool = False,
        **pane_kw: Any,
    ) -> ConversationPane:
        bridge = ClientBridge(client)
        bridges.append(bridge)
        pane = ConversationPane(client, bridge, **pane_kw)
        qtbot.addWidget(pane)
        pane.resize(*size)
        pane.show()
        if active:
            pane.activateWindow()
            await wait_until(pane.isActiveWindow, "the pane's window to be active")
        if cid is not None:
            pane.show_conversation(cid)
        return pane

    yield make
    for bridge in bridges:
        bridge.close()


@pytest.fixture
def open_pane(pane_opener: Open) -> Open:
    """A pane of the default size; a test module overrides this fixture for other needs."""
    return pane_opener
