"""What the windows of every app process of the device are doing, shared over the app bus.

Each process posts ``presence`` on the ``concord.app`` channel (:mod:`desktop.instance`) whenever
it changes: whether one of its windows *or dialogs* is the active window, how many main windows
it has, and its last active main window (id, when, geometry). ``presence?`` asks every process for
its state (a process that joins, or one that needs it fresh). A process that leaves the bus is
forgotten (``members_changed``). With that, any process can tell:

* whether a Concord window or dialog of the device is active (:meth:`Presence.any_active`):
  notifications are held back then, whichever process owns the window;
* where the device's last active main window is: the tray's left click raises it, in whichever
  process it lives (``raise {to, window, startup}`` → ``ack {ok}``), opening one only if none
  exists (:meth:`Presence.show_last_main`);
* where a ``--separate-process`` should put its first window (:meth:`Presence.last_geometry`).

``quit-all`` (the tray's Quit) quits every process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QWindow
from PySide6.QtWidgets import QApplication, QDialog, QMenu, QWidget

from . import startup
from .windows import AppWindow, MainWindow

if TYPE_CHECKING:
    from core.bus import MessageEvent

    from .instance import AppInstance
    from .manager import WindowManager

log = logging.getLogger(__name__)
RAISE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class ProcessState:
    """One process's windows, as it last said."""

    member: str
    mains: int = 0
    active: bool = False
    last_window: str | None = None  # its last active main window's id
    last_at: int = 0  # time.monotonic_ns() (one clock for the processes of a host)
    geometry: tuple[int, int, int, int] | None = None  # of that window (x, y, width, height)

    @classmethod
    def parse(cls, msg: dict[str, Any]) -> ProcessState | None:
        member = msg.get("member")
        if not isinstance(member, str):
            return None
        found = msg.get("last")
        last: dict[str, Any] = found if isinstance(found, dict) else {}
        geometry = last.get("geometry")
        ok_geometry = (
            isinstance(geometry, list)
            and len(geometry) == 4
            and all(isinstance(v, int) for v in geometry)
        )
        window, at, mains = last.get("window"), last.get("at"), msg.get("mains")
        return cls(
            member,
            mains if isinstance(mains, int) else 0,
            msg.get("active") is True,
            window if isinstance(window, str) else None,
            at if isinstance(at, int) else 0,
            tuple(geometry) if ok_geometry else None,  # type: ignore[arg-type]
        )


class Presence(QObject):
    """This process's side: reports its windows, keeps the others', raises on request."""

    changed = Signal()  # this process's or another's state changed

    def __init__(self, manager: WindowManager, instance: AppInstance | None = None) -> None:
        super().__init__()
        self.manager = manager
        self.instance = instance
        self.member = instance.bus.member_id if instance is not None else "this process"
        self.peers: dict[str, ProcessState] = {}
        self._posted_key: tuple[Any, ...] | None = None
        self._focus_timer = QTimer(self)  # after Qt has settled which window is active
        self._focus_timer.setSingleShot(True)
        self._focus_timer.setInterval(0)
        self._focus_timer.timeout.connect(self._focus_settled)
        self._answered: asyncio.Event = asyncio.Event()
        self._offs: list[Any] = []
        self._closed = False
        app = QApplication.instance()
        if isinstance(app, QGuiApplication):
            app.focusWindowChanged.connect(self._focus_changed)
        manager.windowsChanged.connect(self._report)
        if instance is not None:
            self._offs.append(instance.channel.add_listener("message", self._on_message))
            self._offs.append(instance.bus.members_changed.connect(self._members_changed))
            instance.post({"t": "presence?"})
        self._report()

    # --- this process ----------------------------------------------------------------------------

    def _owner_window(self, widget: QWidget | None) -> AppWindow | bool | None:
        """The window of ours that ``widget`` belongs to; True for a dialog or menu of ours with
        no window (app-wide); None when it is not ours."""
        top = widget
        while top is not None:
            if isinstance(top, AppWindow):
                return top if top in self.manager.windows else None
            if top.parentWidget() is None:
                break
            top = top.parentWidget()
        if isinstance(top, (QDialog, QMenu)) or top is self.manager.inspector():
            return True
        return None

    def local_active(self) -> bool:
        """A window or dialog of this process is the active window."""
        return self._owner_window(QApplication.activeWindow()) is not None

    def active_window(self) -> AppWindow | None:
        """The window of this process that is active, or that owns the active dialog."""
        owner = self._owner_window(QApplication.activeWindow())
        return owner if isinstance(owner, AppWindow) else None

    def _focus_changed(self, _window: QWindow | None) -> None:
        self._focus_timer.start()

    def _focus_settled(self) -> None:
        active = self.active_window()
        if active is not None:
            active.active_at = time.monotonic_ns()
        self._report()

    def last_main(self) -> MainWindow | None:
        """This process's main window that was active last (or the newest, if none was)."""
        mains = [w for w in self.manager.windows if isinstance(w, MainWindow)]
        return max(mains, key=lambda w: w.active_at, default=None)

    def state(self) -> dict[str, Any]:
        """This process's ``presence`` message."""
        last = self.last_main()
        mains = sum(isinstance(w, MainWindow) for w in self.manager.windows)
        msg: dict[str, Any] = {
            "t": "presence",
            "member": self.member,
            "mains": mains,
            "active": self.local_active(),
        }
        if last is not None:
            g = last.geometry()
            msg["last"] = {
                "window": last.uid,
                "at": last.active_at,
                "geometry": [g.x(), g.y(), g.width(), g.height()],
            }
        return msg

    def _report(self, force: bool = False) -> None:
        """Post this process's state if what others act on changed (not for a mere move)."""
        msg = self.state()
        last = msg.get("last") or {}
        key = (msg["mains"], msg["active"], last.get("window"), last.get("at"))
        if not force and key == self._posted_key:
            return
        self._posted_key = key
        if self.instance is not None:
            self.instance.post(msg)
        self.changed.emit()

    # --- the device ------------------------------------------------------------------------------

    def any_active(self) -> bool:
        """A Concord window or dialog of this device is active, in any process."""
        return self.local_active() or any(p.active for p in self.peers.values())

    def last_geometry(self) -> tuple[int, int, int, int] | None:
        """The geometry of the device's last active main window (None: there is none)."""
        known = [p for p in self._candidates() if p.geometry is not None]
        return max(known, key=lambda p: p.last_at).geometry if known else None

    def _candidates(self) -> list[ProcessState]:
        mine = ProcessState.parse(self.state())
        assert mine is not None
        every = [mine, *self.peers.values()]
        return sorted(
            (p for p in every if p.mains and p.last_window),
            key=lambda p: p.last_at,
            reverse=True,
        )

    async def refresh(self, seconds: float = 1.0) -> None:
        """Ask every other process for its state; wait until each answered (or ``seconds``)."""
        if self.instance is None:
            return
        others = set(self.instance.bus.members()) - {self.member}
        self.instance.post({"t": "presence?"})
        try:
            async with asyncio.timeout(seconds):
                while not others <= set(self.peers):
                    self._answered.clear()
                    await self._answered.wait()
        except TimeoutError:
            log.info("presence: %d process(es) did not answer", len(others - set(self.peers)))

    async def show_last_main(self, launch: dict[str, str] | None = None) -> str:
        """Show and raise the device's last active main window wherever it lives; open one
        here only if there is none. Returns what was done ("here", "elsewhere", "opened")."""
        launch = launch or {}
        for candidate in self._candidates():
            if candidate.member == self.member:
                window = self.last_main()
                if window is not None:
                    startup.activate(window, launch)
                    return "here"
            elif self.instance is not None:
                ask = {"t": "raise", "to": candidate.member, "window": candidate.last_window}
                reply = await self.instance.ask({**ask, "startup": launch}, RAISE_TIMEOUT_S)
                if reply is not None and reply.get("ok") is True:
                    return "elsewhere"
                log.info("presence: %s did not raise its window", candidate.member)
                self.peers.pop(candidate.member, None)
        self.manager.open_main_window(launch=launch)
        return "opened"

    def quit_all(self) -> None:
        """Quit every app process of the device (the tray's Quit), this one last."""
        if self.instance is not None:
            self.instance.post({"t": "quit-all"})
        self.manager.quit()

    # --- messages --------------------------------------------------------------------------------

    def _on_message(self, event: MessageEvent) -> None:
        msg = event.data
        if not isinstance(msg, dict):
            return
        kind = msg.get("t")
        if kind == "presence":
            state = ProcessState.parse(msg)
            if state is not None and state.member != self.member:
                self.peers[state.member] = state
                self._answered.set()
                self.changed.emit()
        elif kind == "presence?":
            self._report(force=True)
        elif kind == "raise" and msg.get("to") == self.member:
            self._raise(msg)
        elif kind == "quit-all":
            log.info("quit asked by another process")
            self.manager.quit()

    def _raise(self, msg: dict[str, Any]) -> None:
        from .instance import clean_startup

        wanted = msg.get("window")
        found = [w for w in self.manager.windows if w.uid == wanted] or [
            w for w in [self.last_main()] if w is not None
        ]
        if found:
            startup.activate(found[0], clean_startup(msg.get("startup")))
            log.info("window raised for another process")
        if self.instance is not None:
            self.instance.post({"t": "ack", "req": str(msg.get("req", "")), "ok": bool(found)})

    def _members_changed(self, members: list[str]) -> None:
        gone = set(self.peers) - set(members)
        for member in gone:
            del self.peers[member]
        if gone:
            self.changed.emit()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._focus_timer.stop()
        self.manager.windowsChanged.disconnect(self._report)
        app = QApplication.instance()
        if isinstance(app, QGuiApplication):
            app.focusWindowChanged.disconnect(self._focus_changed)
        for off in self._offs:
            off()
        self._offs = []
