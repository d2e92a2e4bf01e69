"""What a launcher sees of startup notification on X11: the ``_NET_STARTUP_INFO`` messages sent
to the root window (collected here through libX11), and a window's ``_NET_STARTUP_ID``."""

from __future__ import annotations

import ctypes
import ctypes.util
import select
import time


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
    _fields_ = [("type", ctypes.c_int), ("message", _ClientMessage), ("pad", ctypes.c_long * 24)]


def _lib() -> ctypes.CDLL:
    x = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
    x.XOpenDisplay.restype = ctypes.c_void_p
    x.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x.XDefaultRootWindow.restype = ctypes.c_ulong
    x.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
    x.XInternAtom.restype = ctypes.c_ulong
    x.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x.XSelectInput.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_long]
    x.XConnectionNumber.argtypes = [ctypes.c_void_p]
    x.XPending.argtypes = [ctypes.c_void_p]
    x.XNextEvent.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Event)]
    x.XFlush.argtypes = x.XCloseDisplay.argtypes = [ctypes.c_void_p]
    return x


class StartupListener:
    """Listens on ``display``'s root window, as a launcher does, for startup messages."""

    def __init__(self, display: str) -> None:
        self.x = _lib()
        self.dpy = self.x.XOpenDisplay(display.encode())
        assert self.dpy, f"cannot open X display {display}"
        self.begin = self.x.XInternAtom(self.dpy, b"_NET_STARTUP_INFO_BEGIN", 0)
        self.more = self.x.XInternAtom(self.dpy, b"_NET_STARTUP_INFO", 0)
        self.x.XSelectInput(self.dpy, self.x.XDefaultRootWindow(self.dpy), 1 << 22)
        self.x.XFlush(self.dpy)
        self.messages: list[str] = []
        self._partial = b""

    def _read(self) -> None:
        while self.x.XPending(self.dpy):
            event = _Event()
            self.x.XNextEvent(self.dpy, ctypes.byref(event))
            if event.type != 33 or event.message.format != 8:
                continue
            kind = event.message.message_type
            if kind not in (self.begin, self.more):
                continue
            chunk = ctypes.string_at(ctypes.addressof(event.message.data), 20)
            self._partial = (b"" if kind == self.begin else self._partial) + chunk
            if b"\0" in self._partial:
                self.messages.append(self._partial.split(b"\0", 1)[0].decode())
                self._partial = b""

    def wait_for(self, prefix: str, timeout: float = 20.0) -> str:
        """The first whole message starting with ``prefix``."""
        deadline = time.monotonic() + timeout
        fd = self.x.XConnectionNumber(self.dpy)
        while True:
            self._read()
            found = [m for m in self.messages if m.startswith(prefix)]
            if found:
                return found[0]
            left = deadline - time.monotonic()
            assert left > 0, f"no startup message {prefix!r}; got {self.messages}"
            select.select([fd], [], [], left)

    def close(self) -> None:
        self.x.XCloseDisplay(self.dpy)
