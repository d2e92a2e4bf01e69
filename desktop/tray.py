"""The tray icon with the unread total drawn into it, the app badge, and notifications for new
messages while no window of ours is focused (a tray balloon, or a toast without a tray)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, QRect, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QGuiApplication, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from .identity import APP_NAME, ICON_SIZES, app_icon

TRAY_SIZES = (16, 22, 24, 32, 48, 64)  # what tray hosts ask for (an SNI host gets them all)


def badge_text(count: int) -> str:
    return "99+" if count > 99 else str(count)


def render_icon(unread: int, size: int = 64) -> QPixmap:
    """The app icon at ``size`` px, with the unread count in a red badge when there is any."""
    pix = QPixmap(size, size)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    icon = app_icon()
    if not icon.isNull():
        icon.paint(p, QRect(0, 0, size, size))
    else:  # the icon files are missing from this installation: a plain glyph, never nothing
        p.setBrush(QColor("#3d6fd8"))
        p.setPen(Qt.PenStyle.NoPen)
        p.drawEllipse(QRectF(size * 0.05, size * 0.05, size * 0.9, size * 0.9))
    if unread > 0:
        # Tray sizes get a bigger badge, and at most two characters, so that it stays legible.
        small = size < 32
        text = "9+" if small and unread > 9 else badge_text(unread)
        h = size * (0.6 if small else 0.45)
        w = h * (1.0 if len(text) == 1 else 1.4 if len(text) == 2 else 1.75)
        rect = QRectF(size - w, 0, w, h)
        # A transparent ring around the badge, as between the two bubbles: it stays readable
        # over the glyph on light and dark panels alike.
        ring = size * 0.06
        p.setCompositionMode(QPainter.CompositionMode.CompositionMode_Clear)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor("black"))
        p.drawRoundedRect(rect.adjusted(-ring, -ring, ring, ring), h / 2 + ring, h / 2 + ring)
        p.setCompositionMode(QPainter.CompositionMode.CompositionMode_SourceOver)
        p.setBrush(QColor("#d93025"))
        p.drawRoundedRect(rect, h / 2, h / 2)
        font = QFont()
        font.setBold(True)
        font.setPixelSize(max(1, round(h * (0.72 if small else 0.66))))
        p.setFont(font)
        p.setPen(QColor("white"))
        p.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
    p.end()
    return pix


def badged_icon(unread: int, sizes: tuple[int, ...] = ICON_SIZES) -> QIcon:
    """The app icon, or with no unread the icon as shipped, or every size with the badge."""
    if unread <= 0 and not app_icon().isNull():
        return app_icon()
    icon = QIcon()
    for size in sizes:
        icon.addPixmap(render_icon(unread, size))
    return icon


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
        manager.bridge.conversationsChanged.connect(lambda *_: self.update_unread())
        manager.bridge.messagesAdded.connect(self.on_messages)
        self.update_unread()  # sets the icon: a tray icon shown without one is an empty slot
        if self.icon is not None:
            self.icon.show()

    def update_unread(self) -> None:
        total = self.manager.list_model.total_unread()
        if total == self.unread:
            return
        self.unread = total
        app = QGuiApplication.instance()
        if isinstance(app, QGuiApplication):
            # The dock/launcher badge where the platform has one (on Linux it is addressed to
            # desktopFileName(): desktop.identity.apply_identity must have run).
            app.setBadgeNumber(total)
            app.setWindowIcon(badged_icon(total))
        if self.icon is not None:
            self.icon.setIcon(badged_icon(total, TRAY_SIZES))
            self.icon.setToolTip(f"{APP_NAME} — {total} unread" if total else APP_NAME)

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
