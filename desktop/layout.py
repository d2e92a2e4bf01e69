"""Where each process's windows are remembered, so that no process clobbers another's.

The first process of a profile (the one that restores the layout at start) owns
``windows.json``. A ``--separate-process`` writes its windows to ``windows-<process id>.json``
instead, and only that file; every file has exactly one writer, and each write is atomic
(:func:`desktop.profile.write_json`), so no lock is needed. On the next start the first process
reopens its own windows *and* those left by separate processes (which had quit, so the files are
orphans), then takes them over into ``windows.json`` and removes the orphan files.

A separate process whose last window the user closes forgets its file (those windows were
closed, not left open at quit); the first process remembers its last window, as before.
"""

from __future__ import annotations

import base64
import logging
import uuid
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QPoint, QRect
from PySide6.QtGui import QGuiApplication

from .profile import read_json, write_json

log = logging.getLogger(__name__)
MAX_WINDOWS = 20  # a damaged file never opens hundreds of windows
CASCADE_PX = 32


class LayoutStore:
    """The layout file(s) of one process: ``primary`` owns ``windows.json``."""

    def __init__(self, config_dir: Path, primary: bool = True) -> None:
        self.config_dir = config_dir
        self.primary = primary
        self.process_id = uuid.uuid4().hex[:12]
        name = "windows.json" if primary else f"windows-{self.process_id}.json"
        self.path = config_dir / name

    def save(self, entries: list[dict[str, Any]]) -> None:
        """This process's windows (an empty list: a separate process forgets its file)."""
        if entries:
            write_json(self.path, {"windows": entries})
        elif not self.primary:
            self.path.unlink(missing_ok=True)

    def orphans(self) -> list[Path]:
        """Files left by separate processes that have quit (for the first process only)."""
        if not self.primary:
            return []
        return sorted(self.config_dir.glob("windows-*.json"))

    def load(self) -> list[dict[str, Any]]:
        """What to reopen: this file's windows, then every orphan's (first process only)."""
        entries: list[dict[str, Any]] = []
        for path in [self.path, *self.orphans()]:
            found = read_json(path).get("windows")
            if isinstance(found, list):
                entries.extend(e for e in found if isinstance(e, dict))
        return entries[:MAX_WINDOWS]

    def adopt_orphans(self) -> None:
        """After this process has saved the windows it reopened: the orphan files go."""
        for path in self.orphans():
            path.unlink(missing_ok=True)
            log.info("layout of a separate process taken over: %s", path.name)


def entry(kind: str, conversation: str | None, geometry: QByteArray) -> dict[str, Any]:
    return {
        "kind": kind,
        "conversation": conversation,
        "geometry": base64.b64encode(bytes(geometry.data())).decode(),
    }


def geometry_of(value: Any) -> QByteArray | None:
    """A saved window geometry (``QWidget.saveGeometry``), or None if it is unreadable."""
    try:
        return QByteArray(base64.b64decode(value if isinstance(value, str) else "", validate=True))
    except (ValueError, TypeError):
        return None


def cascaded(rect: tuple[int, int, int, int]) -> QRect:
    """``rect`` (x, y, width, height) moved down and right by one step, kept on its screen
    (back to the screen's top-left corner when it would leave it)."""
    x, y, w, h = rect
    moved = QRect(x + CASCADE_PX, y + CASCADE_PX, w, h)
    screen = QGuiApplication.screenAt(QPoint(x, y)) or QGuiApplication.primaryScreen()
    if screen is None:
        return moved
    area = screen.availableGeometry()
    moved.setSize(moved.size().boundedTo(area.size()))
    if moved.right() > area.right() or moved.bottom() > area.bottom():
        moved.moveTopLeft(area.topLeft() + QPoint(CASCADE_PX, CASCADE_PX))
        if moved.right() > area.right() or moved.bottom() > area.bottom():
            moved.moveTopLeft(area.topLeft())
    return moved
