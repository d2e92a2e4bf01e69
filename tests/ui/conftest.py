"""UI test fixtures: async tests run on a qasync loop (asyncio driven by Qt's event loop, as in
the app), against a real server on 127.0.0.1 and real ``Client``s (the ``live_server`` and
``clients`` fixtures of ``tests.support.live_server``)."""

from __future__ import annotations

import os

from tests.support.qt import gc_on_the_gui_thread, qasync_loop_factories  # noqa: F401 (fixture)

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


# Qt tests: garbage collected on the GUI thread, async tests on the qasync loop.
pytest_asyncio_loop_factories = qasync_loop_factories
