"""Draws the main window with real content and saves it in the light and the dark theme.

DISPLAY=:N QT_QPA_PLATFORM=xcb python -m tests.desktop._screenshots OUT_DIR
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from core import Client, ClientConfig
from core.bus import PreferenceStore
from desktop.embedded import EmbeddedServer
from desktop.loop import run_qt
from desktop.manager import WindowManager
from desktop.profile import Profile
from ui.bridge import ClientBridge
from ui.theme import apply_theme


async def main(out: Path) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="concord-shots-"))
    server = EmbeddedServer(tmp / "server")
    await asyncio.to_thread(server.start)
    clients = []
    try:
        for name in ("ana", "ben"):
            token = await server.account_token(name)
            clients.append(
                await Client.open(
                    ClientConfig(
                        server.url,
                        tmp / name,
                        name,
                        runtime_dir=tmp / "run",
                        profile=name,
                        refresh_token=token,
                    )
                )
            )
        ana, ben = clients
        titles = ["Release 2.4", "Design review", "Lunch crew", "On-call handover", "Ideas"]
        convs = [await ana.create_conversation(t, ["ben"]) for t in titles]
        await ana.set_pinned(convs[0].id, True)
        await ana.wait_synced(15)
        for i, line in enumerate(
            [
                "Build is green on all three platforms.",
                "Great — can you tag the RC?",
                "Tagged 2.4.0-rc1, notes are in the tracker.",
                "Ship it after lunch?",
            ]
        ):
            sender = ana if i % 2 else ben
            await sender.send_message(convs[0].id, line)
            await sender.wait_synced(15)  # a conversation, not a race
        for c in convs[1:3]:
            await ben.send_message(c.id, "Ping — have a minute?")
        await ben.wait_synced(15)
        await ana.wait_synced(15)
        for _ in range(500):
            if ana.unread(convs[1].id):
                break
            await asyncio.sleep(0.01)
        app = QApplication.instance()
        profile = Profile("shots", None, "ana", tmp / "p", tmp / "c")
        (tmp / "c").mkdir()
        manager = WindowManager(
            app, ana, ClientBridge(ana), PreferenceStore({}), profile, lambda: None
        )
        window = manager.open_main_window(convs[0].id)
        window.resize(1000, 640)
        out.mkdir(parents=True, exist_ok=True)
        for theme in ("light", "dark"):
            apply_theme(app, theme)
            await asyncio.sleep(0.6)
            screen = QGuiApplication.primaryScreen()
            shot = screen.grabWindow(window.winId())
            if shot.isNull() or shot.width() < 100:
                shot = window.grab()
            shot.save(str(out / f"main-{theme}.png"))
            print(out / f"main-{theme}.png")
        window.close()
    finally:
        for c in clients:
            await c.close()
        await asyncio.to_thread(server.stop)


if __name__ == "__main__":
    app = QApplication(sys.argv[:1])
    app.setQuitOnLastWindowClosed(False)
    run_qt(lambda: main(Path(sys.argv[1])))
