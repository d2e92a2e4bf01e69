"""A desktop session for tests of what the app says to the desktop: an X server (Xvfb), a D-Bus
session bus (where Qt sends the launcher badge) and a system tray (an XEmbed tray manager that
owns ``_NET_SYSTEM_TRAY_S0``, so ``QSystemTrayIcon.isSystemTrayAvailable()`` is true and a tray
icon really gets shown). ``session(tmp)`` yields the environment for app processes."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def missing_tools() -> list[str]:
    return [b for b in ("Xvfb", "dbus-daemon") if not shutil.which(b)] + (
        [] if ctypes.util.find_library("X11") else ["libX11"]
    )


@contextmanager
def fake_tray(display: str) -> Iterator[None]:
    """Own the system-tray selection on ``display`` (the tray spec's manager), drawing nothing."""
    x11 = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XDefaultRootWindow.restype = ctypes.c_ulong
    x11.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
    x11.XCreateSimpleWindow.restype = ctypes.c_ulong
    x11.XCreateSimpleWindow.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int,
                                        ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
                                        ctypes.c_uint, ctypes.c_ulong, ctypes.c_ulong]  # fmt: skip
    x11.XInternAtom.restype = ctypes.c_ulong
    x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x11.XSetSelectionOwner.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong,
                                       ctypes.c_ulong]  # fmt: skip
    x11.XGetSelectionOwner.restype = ctypes.c_ulong
    x11.XGetSelectionOwner.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
    x11.XFlush.argtypes = x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    dpy = x11.XOpenDisplay(display.encode())
    assert dpy, f"cannot open X display {display}"
    try:
        win = x11.XCreateSimpleWindow(dpy, x11.XDefaultRootWindow(dpy), 0, 0, 1, 1, 0, 0, 0)
        selection = x11.XInternAtom(dpy, b"_NET_SYSTEM_TRAY_S0", 0)
        x11.XSetSelectionOwner(dpy, selection, win, 0)
        x11.XFlush(dpy)
        assert x11.XGetSelectionOwner(dpy, selection) == win, "could not own the tray selection"
        yield
    finally:
        x11.XCloseDisplay(dpy)


@contextmanager
def session(tmp: Path) -> Iterator[dict[str, str]]:
    missing = missing_tools()
    assert not missing, f"install {missing} (Debian: xvfb dbus libx11-6) for desktop-session tests"
    read_fd, write_fd = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    bus = None
    try:
        with os.fdopen(read_fd) as f:
            display = f.readline().strip()
        assert display, "Xvfb did not start"
        bus = subprocess.Popen(
            ["dbus-daemon", "--session", "--nofork", "--print-address=1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert bus.stdout is not None
        address = bus.stdout.readline().strip()
        assert address, "dbus-daemon did not start"
        xdg = tmp / "xdg-session"
        xdg.mkdir(mode=0o700, exist_ok=True)
        env = {
            **os.environ,
            "DISPLAY": f":{display}",
            "QT_QPA_PLATFORM": "xcb",
            "DBUS_SESSION_BUS_ADDRESS": address,
            "XDG_RUNTIME_DIR": str(xdg),
        }
        with fake_tray(env["DISPLAY"]):
            yield env
    finally:
        for proc in (bus, xvfb):
            if proc is not None:
                proc.terminate()
                proc.wait(10)
