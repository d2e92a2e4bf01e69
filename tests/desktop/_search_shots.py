"""Screenshots of search, light and dark: the Ctrl+K popup over a main window with conversation
and message results (the matches highlighted), and the Ctrl+F find bar on a match.

DISPLAY=:N QT_QPA_PLATFORM=xcb python -m tests.desktop._search_shots OUT_DIR
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QWidget

from core import Client, ClientConfig
from core.bus import PreferenceStore
from desktop.embedded import EmbeddedServer
from desktop.loop import run_qt
from desktop.manager import WindowManager
from desktop.profile import Profile
from ui.bridge import ClientBridge
from ui.search_popup import SearchPopup
from ui.theme import apply_theme

CONVERSATIONS = {
    "Release 2.4": [
        "Release notes draft is up — please review before Friday",
        "Can we move the release to Monday? QA needs one more day",
        "Tagged 2.4.0-rc1, release candidate builds are green 🎉",
    ],
    "Release retro": ["What slowed the last release down? Add your notes here"],
    "Design review": ["Mockups for the settings page are up", "Relative dates in the list?"],
    "Lunch crew": ["Thai place or the usual? 🍜"],
}


async def shoot(window: QWidget, path: Path) -> None:
    await asyncio.sleep(0.5)
    shot = QGuiApplication.primaryScreen().grabWindow(window.winId())
    if shot.isNull() or shot.width() < 100:
        shot = window.grab()
    shot.save(str(path))
    print(path)


async def main(out: Path) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="concord-search-shots-"))
    server = EmbeddedServer(tmp / "server")
    await asyncio.to_thread(server.start)
    token = await server.account_token("ana")
    client = await Client.open(
        ClientConfig(
            server.url,
            tmp / "ana",
            "ana",
            runtime_dir=tmp / "run",
            profile="ana",
            refresh_token=token,
        )
    )
    try:
        first = None
        for title, lines in CONVERSATIONS.items():
            conv = await client.create_conversation(title)
            first = first or conv
            for line in lines:
                await client.send_message(conv.id, line)
        await client.wait_synced(15)
        app = QApplication.instance()
        out.mkdir(parents=True, exist_ok=True)
        profile = Profile("shots-search", None, "ana", tmp / "p", tmp / "c")
        (tmp / "c").mkdir()
        manager = WindowManager(
            app, client, ClientBridge(client), PreferenceStore({}), profile, lambda: None
        )
        assert first is not None
        window = manager.open_main_window(first.id)
        window.resize(1000, 660)
        for theme in ("light", "dark"):
            apply_theme(app, theme)
            manager.quick_switch(window)
            popup = next(w for w in app.topLevelWidgets() if isinstance(w, SearchPopup))
            popup.edit.setText("release")
            await shoot(popup, out / f"search-{theme}.png")
            popup.close()
            await asyncio.sleep(0.1)
            assert window.find_bar is not None
            window.find_bar.open()
            window.find_bar.edit.setText("release")
            await shoot(window, out / f"find-{theme}.png")
            window.find_bar.close_bar()
        window.close()
    finally:
        await client.close()
        await asyncio.to_thread(server.stop)


if __name__ == "__main__":
    app = QApplication(sys.argv[:1])
    app.setQuitOnLastWindowClosed(False)
    run_qt(lambda: main(Path(sys.argv[1])))
