"""The tray icon with the unread total drawn into it, the app badge, and notifications for new
messages while no window of ours is focused (a tray balloon, or a toast without a tray)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QGuiApplication, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QMenu, QSystemTrayIcon


def badge_text(count: int) -> str:
    return "99+" if count > 99 else str(count)


def render_icon(unread: int, size: int = 64) -> QPixmap:
    """The app glyph, with the unread count in a red badge when there is any."""
    pix = QPixmap(size, size)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setBrush(QColor("#3d6fd8"))
    p.setPen(Qt.PenStyle.NoPen)
    p.drawEllipse(QRectF(size * 0.05, size * 0.05, size * 0.9, size * 0.9))
    p.setPen(QColor("white"))
    font = QFont()
    font.setBold(True)
    font.setPixelSize(int(size * 0.55))
    p.setFont(font)
    p.drawText(QRectF(0, 0, size, size), Qt.AlignmentFlag.AlignCenter, "C")
    if unread > 0:
        text = badge_text(unread)
        w = size * (0.45 if len(text) == 1 else 0.62 if len(text) == 2 else 0.78)
        rect = QRectF(size - w, 0, w, size * 0.45)
        p.setBrush(QColor("#d93025"))
        p.setPen(Qt.PenStyle.NoPen)
        p.drawRoundedRect(rect, size * 0.22, size * 0.22)
        font.setPixelSize(int(size * 0.3))
        p.setFont(font)
        p.setPen(QColor("white"))
        p.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
    p.end()
    return pix


class Tray(QObject):
    notified = Signal(str, str)  # title, text: every notification shown (tray or toast)

    def __init__(self, manager: Any, prefs: Any) -> None:
        super().__init__()
        self.manager = manager
        self.prefs = prefs
        self.me = manager.client.me
        self.unread = -1
        self.icon: QSystemTrayIcon | None = None
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.icon = QSystemTrayIcon()
            menu = QMenu()
            menu.addAction("Open Concord", manager.open_main_window)
            menu.addAction("Quit", manager.quit)
            self.icon.setContextMenu(menu)
            self.icon.activated.connect(lambda _reason: manager.open_main_window())
            self._menu = menu
            self.icon.show()
        manager.bridge.conversationsChanged.connect(lambda *_: self.update_unread())
        manager.bridge.messagesAdded.connect(self.on_messages)
        self.update_unread()

    def update_unread(self) -> None:
        total = self.manager.list_model.total_unread()
        if total == self.unread:
            return
        self.unread = total
        app = QGuiApplication.instance()
        if isinstance(app, QGuiApplication):
            app.setBadgeNumber(total)  # dock/taskbar badge where the platform has one
            app.setWindowIcon(QIcon(render_icon(total)))
        if self.icon is not None:
            self.icon.setIcon(QIcon(render_icon(total)))
            self.icon.setToolTip(f"Concord — {total} unread" if total else "Concord")

    def on_messages(self, conversation_id: str, messages: list) -> None:
        if not self.prefs.get("notifications", True) or self.manager.any_focused():
            return
        fresh = [m for m in messages if m.author != self.me and m.seq is not None]
        if not fresh:
            return
        view = self.manager.client.conversation(conversation_id)
        title = view.title if view else "New message"
        text = fresh[-1].body if len(fresh) == 1 else f"{len(fresh)} new messages"
        text = f"{fresh[-1].author}: {text}"[:200]
        self.notified.emit(title, text)
        if self.icon is not None:
            self.icon.showMessage(title, text, QSystemTrayIcon.MessageIcon.Information, 5000)
        else:
            self.manager.toast_remote(f"{title} — {text}")

    def close(self) -> None:
        if self.icon is not None:
            self.icon.hide()
