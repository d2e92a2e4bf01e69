"""Desktop tests run like the UI tests: on the app's qasync loop, with garbage collected on the
GUI thread, against the real server and clients of ``tests.support.live_server``."""

from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

from core.bus import PreferenceStore
from desktop.manager import WindowManager
from desktop.profile import Profile
from tests.support.qt import gc_on_the_gui_thread, qasync_loop_factories  # noqa: F401 (fixture)
from ui.bridge import ClientBridge

# Qt tests: garbage collected on the GUI thread, async tests on the qasync loop.
pytest_asyncio_loop_factories = qasync_loop_factories


@pytest.fixture
def manager_for(tmp_path: Path):  # type: ignore[no-untyped-def]
    made: list[tuple[WindowManager, ClientBridge]] = []

    def make(client, name: str = "desk") -> WindowManager:  # type: ignore[no-untyped-def]
        profile = Profile(
            name, client.config.server_url, client.me, tmp_path / name / "d", tmp_path / name / "c"
        )
        profile.config_dir.mkdir(parents=True, exist_ok=True)
        bridge = ClientBridge(client)
        manager = WindowManager(
            QApplication.instance(),
            client,
            bridge,
            PreferenceStore({"notifications": True}),
            profile,
            lambda: None,
        )
        made.append((manager, bridge))
        return manager

    yield make
    for manager, bridge in made:
        for w in list(manager.windows):
            w.close()
        bridge.close()
