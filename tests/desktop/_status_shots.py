"""Screenshots of a main window's status bar in every sync state, stacked into one picture.

"Live" and "Offline — can't reach …" come from a real client whose real server is stopped; the
other states are the statuses the engine reports, handed to the same window's indicator.

DISPLAY=:N QT_QPA_PLATFORM=xcb python -m tests.desktop._status_shots OUT_DIR
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QRect
from PySide6.QtGui import QColor, QPainter, QPixmap
from PySide6.QtWidgets import QApplication

from core import Client, ClientConfig, SyncStatus
from core.bus import PreferenceStore
from core.engine import EngineConfig
from desktop.embedded import EmbeddedServer
from desktop.loop import run_qt
from desktop.manager import WindowManager
from desktop.profile import Profile
from ui.bridge import ClientBridge
from ui.theme import apply_theme


async def until(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("screenshot step timed out")
        await asyncio.sleep(0.02)


async def main(out: Path) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="concord-status-shots-"))
    server = EmbeddedServer(tmp / "server")
    await asyncio.to_thread(server.start)
    token = await server.account_token("ana")
    fast = EngineConfig(backoff_base_s=0.2, backoff_cap_s=2.0)
    client = await Client.open(
        ClientConfig(
            server.url,
            tmp / "ana",
            "ana",
            runtime_dir=tmp / "run",
            profile="ana",
            refresh_token=token,
            engine=fast,
        )
    )
    app = QApplication.instance()
    (tmp / "c").mkdir()
    bridge = ClientBridge(client)
    manager = WindowManager(
        app,
        client,
        bridge,
        PreferenceStore({}),
        Profile("shots", None, "ana", tmp / "p", tmp / "c"),
        lambda: None,
    )
    conv = await client.create_conversation("Release 2.4")
    window = manager.open_main_window(conv.id)
    window.resize(760, 420)
    apply_theme(app, "light")
    shots: list[tuple[str, QPixmap]] = []

    async def shoot(label: str) -> None:
        await asyncio.sleep(0.3)
        bar = window.statusBar()
        shots.append((label, window.grab(QRect(bar.pos(), bar.size()))))

    try:
        await until(lambda: client.status.state == "live")
        await shoot("live (real)")
        await asyncio.to_thread(server.stop)
        await until(lambda: client.status.state == "unreachable")
        await shoot("unreachable (real: server stopped)")
        bridge.statusChanged.disconnect(window.status_indicator.set_status)  # ours from here
        target = client.status.target
        for label, status in [
            (
                "unreachable, embedded server",
                SyncStatus("unreachable", "", next_retry_s=3.0, target=target, local_server=True),
            ),
            ("reconnecting", SyncStatus("reconnecting", "", next_retry_s=4.0, target=target)),
            ("polling", SyncStatus("polling", "", next_retry_s=10.0, target=target)),
            ("connecting", SyncStatus("connecting", "Connecting", target=target)),
            ("sign-in required", SyncStatus("sign_in_required", "Sign-in required")),
            ("sync off", SyncStatus("offline", "Sync off")),
        ]:
            window.status_indicator.set_status(status)
            await shoot(label)
        out.mkdir(parents=True, exist_ok=True)
        width = max(p.width() for _, p in shots) + 260
        height = sum(p.height() + 8 for _, p in shots) + 8
        sheet = QPixmap(width, height)
        sheet.fill(QColor("#ffffff"))
        painter = QPainter(sheet)
        y = 8
        for label, pixmap in shots:
            painter.drawText(8, y + pixmap.height() // 2 + 5, label)
            painter.drawPixmap(250, y, pixmap)
            y += pixmap.height() + 8
        painter.end()
        sheet.save(str(out / "status-states.png"))
        print(out / "status-states.png")
        bridge.statusChanged.connect(window.status_indicator.set_status)  # as the window expects
        window.close()
    finally:
        bridge.close()
        await client.close()


if __name__ == "__main__":
    app = QApplication(sys.argv[:1])
    app.setQuitOnLastWindowClosed(False)
    run_qt(lambda: main(Path(sys.argv[1])))
