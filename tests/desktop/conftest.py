"""Desktop tests share the UI tests' qasync loop, GC discipline and real server/clients."""

from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

from core.bus import PreferenceStore
from desktop.manager import WindowManager
from desktop.profile import Profile
from tests.ui.conftest import (  # noqa: F401 (fixtures and the loop-factory hook)
    _gc_on_the_gui_thread,
    clients,
    live_server,
    pytest_asyncio_loop_factories,
    qapp_cls,
)
from ui.bridge import ClientBridge


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
