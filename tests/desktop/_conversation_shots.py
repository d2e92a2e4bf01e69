"""Screenshots of the list and message views with realistic content, light and dark: a main
window (avatars, previews, times, badges, a pinned row; a conversation with grouped messages, my
own messages, a link and emoji), an edit in progress, the same window 360 px wide, the empty
states, and the settings dialog (check boxes, the Close icon).

DISPLAY=:N QT_QPA_PLATFORM=xcb python -m tests.desktop._conversation_shots OUT_DIR
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
from ui.dialogs import SettingsDialog
from ui.theme import apply_theme

CHAT = [
    ("ben", "Morning! Build is green on all three platforms 🎉"),
    ("ben", "Release notes draft: https://example.com/concord/2.4/notes?draft=1&lang=en"),
    ("ana", "Great — can you tag the RC?"),
    ("ana", "I'll write the announcement meanwhile ✍️"),
    ("ben", "Tagged 2.4.0-rc1. <b>Not bold</b>, as typed."),
    ("cleo", "QA starts after lunch, ping me at mailto:cleo@example.com if it slips"),
    ("ana", "Ship it after lunch? 🚀"),
]
OTHERS = [
    ("Design review", "cleo", "Mockups for the new settings page are up"),
    ("Lunch crew", "ben", "Thai place or the usual? 🍜"),
    ("On-call handover", "cleo", "Nothing on fire. Disk alert on db-2 is a known flake."),
    ("Ideas", "ana", "What if search also looked at attachments' names?"),
]


async def shoot(window: QWidget, path: Path) -> None:
    await asyncio.sleep(0.5)
    shot = QGuiApplication.primaryScreen().grabWindow(window.winId())
    if shot.isNull() or shot.width() < 100:
        shot = window.grab()
    shot.save(str(path))
    print(path)


async def main(out: Path) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="concord-chat-shots-"))
    server = EmbeddedServer(tmp / "server")
    await asyncio.to_thread(server.start)
    clients: dict[str, Client] = {}
    try:
        for name in ("ana", "ben", "cleo", "dan"):
            token = await server.account_token(name)
            clients[name] = await Client.open(
                ClientConfig(
                    server.url,
                    tmp / name,
                    name,
                    runtime_dir=tmp / "run",
                    profile=name,
                    refresh_token=token,
                )
            )
        ana = clients["ana"]
        release = await ana.create_conversation("Release 2.4", ["ben", "cleo"])
        convs = [release]
        for title, _who, _line in OTHERS:
            convs.append(await ana.create_conversation(title, ["ben", "cleo"]))
        await ana.set_pinned(release.id, True)
        await ana.wait_synced(15)
        for who in ("ben", "cleo"):
            for _ in range(1000):  # each of them sees every conversation before writing
                if all(clients[who].conversation(c.id) for c in convs):
                    break
                await asyncio.sleep(0.01)
        for who, line in CHAT:
            await clients[who].send_message(release.id, line)
            await clients[who].wait_synced(15)  # in this order, as a conversation
        for conv, (_title, who, line) in zip(convs[1:], OTHERS, strict=True):
            await clients[who].send_message(conv.id, line)
            await clients[who].wait_synced(15)
        for _ in range(120):  # a busy channel: the badge says 99+
            await clients["ben"].send_message(convs[2].id, "🍜")
        await clients["ben"].wait_synced(30)
        for _ in range(500):
            if ana.unread(convs[2].id) >= 100:
                break
            await asyncio.sleep(0.02)
        app = QApplication.instance()
        out.mkdir(parents=True, exist_ok=True)
        for name in ("ana", "dan"):
            client = clients[name]
            profile = Profile(f"shots-{name}", None, name, tmp / f"p-{name}", tmp / f"c-{name}")
            (tmp / f"c-{name}").mkdir()
            manager = WindowManager(
                app, client, ClientBridge(client), PreferenceStore({}), profile, lambda: None
            )
            window = manager.open_main_window(release.id if name == "ana" else None)
            window.resize(1000, 660)
            for theme in ("light", "dark"):
                apply_theme(app, theme)
                if name == "ana":
                    window.resize(1000, 660)
                    await shoot(window, out / f"chat-{theme}.png")
                    mine = [m for m in client.messages(release.id) if m.author == name]
                    actions = window.pane.message_actions  # an edit of my last message
                    assert actions.edit(mine[-1].id, "Ship it after lunch? 🚀 (QA permitting)")
                    await shoot(window, out / f"edit-{theme}.png")
                    actions.cancel()
                    window.resize(360, 640)
                    await shoot(window, out / f"chat-narrow-{theme}.png")
                else:
                    await shoot(window, out / f"empty-{theme}.png")
                    settings = SettingsDialog(PreferenceStore({"notifications": True}), window)
                    settings.show()  # check boxes and the Close icon, in both themes
                    await shoot(settings, out / f"settings-{theme}.png")
                    settings.close()
            if name == "dan":  # a conversation nobody has written in yet
                fresh = await client.create_conversation("Weekend hike", ["ana"])
                await client.wait_synced(15)
                window.open_conversation(fresh.id)
                for theme in ("light", "dark"):
                    apply_theme(app, theme)
                    await shoot(window, out / f"empty-conversation-{theme}.png")
            window.close()
    finally:
        for c in clients.values():
            await c.close()
        await asyncio.to_thread(server.stop)


if __name__ == "__main__":
    app = QApplication(sys.argv[:1])
    app.setQuitOnLastWindowClosed(False)
    run_qt(lambda: main(Path(sys.argv[1])))
