"""Startup notification for windows opened on behalf of another launch.

A launcher starting ``concord`` (or its "New Window" action) shows a busy cursor and hands the
process a startup notification: ``DESKTOP_STARTUP_ID`` on X11 (freedesktop startup-notification)
or ``XDG_ACTIVATION_TOKEN`` on Wayland (xdg-activation). A second launch only asks the running
process for a window and exits, so it forwards the notification (:func:`from_environment`, read
before Qt starts and consumes it) over the app bus, and the process that opens the window uses it
(:func:`activate`): the new window gets the focus the launcher granted, and the busy cursor stops.

* Wayland: Qt's xdg-shell takes ``XDG_ACTIVATION_TOKEN`` from the environment at the next
  ``requestActivate()`` (and unsets it), so the token is put there just before activating.
* X11: the window gets ``_NET_STARTUP_ID`` before it is mapped (the window manager reads the
  launch's timestamp from it for focus-stealing prevention) and the launcher is told
  ``remove: ID=…`` (the ``_NET_STARTUP_INFO`` messages on the root window), which Qt itself only
  does for the first window of a process it started with the ID.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget

log = logging.getLogger(__name__)
_X11_CHUNK = 20  # bytes of a message per _NET_STARTUP_INFO client message (format 8)


def from_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """This launch's startup notification, as it is sent over the bus (``{}``: none)."""
    env = os.environ if env is None else env
    found: dict[str, str] = {}
    if env.get("DESKTOP_STARTUP_ID"):
        found["x11"] = env["DESKTOP_STARTUP_ID"]
    if env.get("XDG_ACTIVATION_TOKEN"):
        found["wayland"] = env["XDG_ACTIVATION_TOKEN"]
    return found


def activate(window: QWidget, launch: Mapping[str, str], platform: str | None = None) -> None:
    """Show ``window`` (restored if minimized), raise it and give it the focus, on behalf of the
    launch whose startup notification is ``launch`` (``{}``: our own request, e.g. a click)."""
    platform = QGuiApplication.platformName() if platform is None else platform
    token = launch.get("wayland")
    if token and platform.startswith("wayland"):
        os.environ["XDG_ACTIVATION_TOKEN"] = token  # taken by Qt at requestActivate()
    startup_id = launch.get("x11") if platform == "xcb" else None
    if startup_id and not window.isVisible():
        set_startup_id(int(window.winId()), startup_id)  # winId(): the window exists, unmapped
    if window.isMinimized():
        window.setWindowState(window.windowState() & ~Qt.WindowState.WindowMinimized)
    window.show()
    window.raise_()
    window.activateWindow()
    if startup_id:
        send_startup_message(f"remove: ID={quote(startup_id)}")
    if launch:
        log.info("window activated for a launch (%s)", ", ".join(sorted(launch)))


def quote(value: str) -> str:
    """A startup-notification value: quoted (with ``\\`` and ``"`` escaped) when it must be."""
    if not any(c in value for c in ' "\\'):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def message_chunks(message: str) -> list[bytes]:
    """``message`` NUL-terminated, in the 20-byte pieces the client messages carry."""
    data = message.encode() + b"\0"
    return [data[i : i + _X11_CHUNK].ljust(_X11_CHUNK, b"\0") for i in range(0, len(data), 20)]


# --- X11 (libX11 through ctypes: Qt offers no API for either step) ------------------------------


class _ClientMessage(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("serial", ctypes.c_ulong),
        ("send_event", ctypes.c_int),
        ("display", ctypes.c_void_p),
        ("window", ctypes.c_ulong),
        ("message_type", ctypes.c_ulong),
        ("format", ctypes.c_int),
        ("data", ctypes.c_long * 5),  # Xlib's union {char b[20]; short s[10]; long l[5];}
    ]


class _Event(ctypes.Union):
    _fields_ = [("message", _ClientMessage), ("pad", ctypes.c_long * 24)]


_CLIENT_MESSAGE = 33
_PROPERTY_CHANGE_MASK = 1 << 22


def _x11() -> Any:
    name = ctypes.util.find_library("X11")
    if name is None:
        return None
    lib = ctypes.CDLL(name)
    lib.XOpenDisplay.restype = ctypes.c_void_p
    lib.XOpenDisplay.argtypes = [ctypes.c_char_p]
    lib.XDefaultRootWindow.restype = ctypes.c_ulong
    lib.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
    lib.XInternAtom.restype = ctypes.c_ulong
    lib.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    lib.XChangeProperty.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong,
                                    ctypes.c_ulong, ctypes.c_int, ctypes.c_int,
                                    ctypes.c_char_p, ctypes.c_int]  # fmt: skip
    lib.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long,
                               ctypes.POINTER(_Event)]  # fmt: skip
    lib.XFlush.argtypes = lib.XCloseDisplay.argtypes = [ctypes.c_void_p]
    return lib


def _with_display(action: Any) -> bool:
    lib = _x11()
    display = lib.XOpenDisplay(None) if lib is not None else None
    if not display:
        log.info("no X display to forward the startup notification to")
        return False
    try:
        action(lib, display)
        lib.XFlush(display)
        return True
    finally:
        lib.XCloseDisplay(display)


def set_startup_id(window_id: int, startup_id: str) -> bool:
    """Put ``_NET_STARTUP_ID`` on the X11 window ``window_id`` (before it is mapped)."""

    def act(lib: Any, display: int) -> None:
        prop = lib.XInternAtom(display, b"_NET_STARTUP_ID", 0)
        utf8 = lib.XInternAtom(display, b"UTF8_STRING", 0)
        data = startup_id.encode()
        lib.XChangeProperty(display, window_id, prop, utf8, 8, 0, data, len(data))

    return _with_display(act)


def send_startup_message(message: str) -> bool:
    """Send a startup-notification message to the root window (the launcher listens there)."""

    def act(lib: Any, display: int) -> None:
        root = lib.XDefaultRootWindow(display)
        begin = lib.XInternAtom(display, b"_NET_STARTUP_INFO_BEGIN", 0)
        more = lib.XInternAtom(display, b"_NET_STARTUP_INFO", 0)
        for i, chunk in enumerate(message_chunks(message)):
            event = _Event()
            event.message.type = _CLIENT_MESSAGE
            event.message.send_event = 1
            event.message.display = display
            event.message.window = root
            event.message.message_type = begin if i == 0 else more
            event.message.format = 8
            ctypes.memmove(ctypes.addressof(event.message.data), chunk, _X11_CHUNK)
            lib.XSendEvent(display, root, 0, _PROPERTY_CHANGE_MASK, ctypes.byref(event))

    return _with_display(act)
