"""The tray icon with the unread total drawn into it, the app badge, and notifications for new
messages while no Concord window of the device is active (a tray balloon, or a toast without a
tray). One process of the device owns the icon (:class:`Tray`)."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from PySide6.QtCore import QObject, QRect, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QGuiApplication, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from . import startup
from .identity import APP_NAME, ICON_SIZES, app_icon

log = logging.getLogger(__name__)

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
    """The device's tray icon. Every process builds one, but only the *owner* shows it: the
    leader of the app bus (``set_owner``, moved when that process quits or dies), so a device
    has one icon however many processes run. Left click shows and raises the device's last
    active main window (in whichever process it lives, see :class:`desktop.presence.Presence`);
    right click shows the menu. The owner alone sends desktop notifications, and none while a
    Concord window or dialog of the device is active."""

    notified = Signal(str, str)  # title, text: every notification shown (tray or toast)
    shown = Signal(str)  # what a left click did: "here", "elsewhere" or "opened"

    def __init__(self, manager: Any, prefs: Any, presence: Any = None, owner: bool = True) -> None:
        super().__init__()
        self.manager = manager
        self.prefs = prefs
        self.presence = presence
        self.me = manager.client.me
        self.unread = -1
        self.owner = False
        self.available = QSystemTrayIcon.isSystemTrayAvailable()
        self.menu = QMenu()
        self.menu.addAction("&Open Concord", self.open)
        self.menu.addAction("&New Window", lambda: manager.open_main_window())
        self.menu.addAction("&Settings…", lambda: manager.open_settings(manager.active_window()))
        self.menu.addSeparator()
        self.menu.addAction("&Quit", self.quit)
        self.icon = QSystemTrayIcon()  # built even with no tray, so that it can be driven
        self.icon.setContextMenu(self.menu)  # a right click shows it (Qt, or the tray host)
        self.icon.activated.connect(self.on_activated)
        self._tasks: set[asyncio.Task[str]] = set()
        manager.bridge.conversationsChanged.connect(lambda *_: self.update_unread())
        manager.bridge.messagesAdded.connect(self.on_messages)
        self.update_unread()  # sets the icon: a tray icon shown without one is an empty slot
        self.set_owner(owner)

    def set_owner(self, owner: bool) -> None:
        """Show the icon iff this process owns it (the app bus leader)."""
        if owner == self.owner:
            return
        self.owner = owner
        log.info("tray icon: %s", "owned by this process" if owner else "owned by another process")
        if owner and self.available:
            self.icon.show()
        else:
            self.icon.hide()

    def on_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        R = QSystemTrayIcon.ActivationReason
        if reason in (R.Trigger, R.DoubleClick):
            self.open()
        # R.Context: the menu shows itself; R.MiddleClick: nothing, as in other messengers.

    def open(self) -> None:
        """Show and raise the device's last active main window; open one only if none exists.
        On Wayland the tray host may hand us an activation token (SNI ProvideXdgActivationToken,
        which Qt puts into ``XDG_ACTIVATION_TOKEN``): it goes to the process that raises."""
        token = os.environ.pop("XDG_ACTIVATION_TOKEN", None)
        launch = {"wayland": token} if token else {}
        if self.presence is None:
            window = self.manager.active_window()
            if window is None:
                self.manager.open_main_window(launch=launch)
            else:
                startup.activate(window, launch)
            return
        task = asyncio.ensure_future(self.presence.show_last_main(launch))
        self._tasks.add(task)
        task.add_done_callback(self._shown)

    def _shown(self, task: asyncio.Task[str]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        if task.exception() is not None:
            log.error("tray: could not show a window", exc_info=task.exception())
            return
        log.info("tray: window shown (%s)", task.result())
        self.shown.emit(task.result())

    def busy(self) -> bool:
        """A click is still being handled (asking another process to raise its window)."""
        return bool(self._tasks)

    def quit(self) -> None:
        """Quit Concord: every process of the device."""
        if self.presence is not None:
            self.presence.quit_all()
        else:
            self.manager.quit()

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
        self.icon.setIcon(badged_icon(total, TRAY_SIZES))
        self.icon.setToolTip(f"{APP_NAME} — {total} unread" if total else APP_NAME)

    def any_active(self) -> bool:
        """A Concord window or dialog of the device is active (in any process)."""
        if self.presence is not None:
            return bool(self.presence.any_active())
        return bool(self.manager.any_focused())

    def on_messages(self, conversation_id: str, messages: list) -> None:
        if not self.owner or not self.prefs.get("notifications", True) or self.any_active():
            return
        fresh = [  # an edit or a delete of a message is not a new one
            m
            for m in messages
            if m.author != self.me and m.seq is not None and not (m.edited or m.deleted)
        ]
        if not fresh:
            return
        view = self.manager.client.conversation(conversation_id)
        title = view.title if view else "New message"
        text = fresh[-1].body if len(fresh) == 1 else f"{len(fresh)} new messages"
        self.notify(title, f"{fresh[-1].author}: {text}"[:200])

    def notify(self, title: str, text: str) -> None:
        """A desktop notification (the owner only; a toast where there is no tray)."""
        if not self.owner:
            return
        self.notified.emit(title, text)
        if self.available:
            self.icon.showMessage(title, text, QSystemTrayIcon.MessageIcon.Information, 5000)
        else:
            self.manager.toast_remote(f"{title} — {text}")

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        self.icon.hide()
