"""``--separate-process`` as a user runs it, with real ``concord`` processes (offscreen) on one
profile: the tray icon has exactly one owner and moves when that process dies; a separate process
opens one new main window cascaded from the active one, keeps its own layout file, and the next
start reopens every window of both."""

from __future__ import annotations

import base64
import json
import re
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QByteArray
from PySide6.QtWidgets import QMainWindow

from tests.support.app_process import App, start

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
OWNER = "tray icon: owned by this process"
LEARNED = "embedded server at "  # every process, when the new host announces itself
SEPARATE = re.compile(r"separate process: one new window at (\d+),(\d+) (\d+)x(\d+), cascaded")


def config(tmp: Path) -> Path:
    return tmp / "config" / "default"  # Profile.resolve(None, ...) names the profile "default"


def saved(path: Path) -> list[dict]:
    return json.loads(path.read_text())["windows"]


def geometry_blob(x: int, y: int, w: int, h: int) -> str:
    window = QMainWindow()
    window.setGeometry(x, y, w, h)
    blob = bytes(window.saveGeometry().data())
    window.deleteLater()
    return base64.b64encode(blob).decode()


def size_of(entry: dict) -> tuple[int, int, int, int]:
    window = QMainWindow()
    assert window.restoreGeometry(QByteArray(base64.b64decode(entry["geometry"])))
    g = window.geometry()
    window.deleteLater()
    return g.x(), g.y(), g.width(), g.height()


@pytest.fixture
def apps():  # type: ignore[no-untyped-def]
    started: list[App] = []
    yield started
    for app in started:
        app.kill()


def test_the_tray_icon_has_one_owner_and_moves_when_it_dies(apps, tmp_path: Path) -> None:
    first = start(apps, tmp_path, "first")
    first.wait(OWNER)
    second = start(apps, tmp_path, "second", "--separate-process")
    second.wait(SEPARATE)
    third = start(apps, tmp_path, "third", "--separate-process")
    third.wait(SEPARATE)
    assert second.find(OWNER) is None and third.find(OWNER) is None, "one icon per device"
    owner, survivors = first, [first, second, third]
    for _round in range(2):
        t0 = time.monotonic()
        owner.kill()  # SIGKILL: app bus leadership, and so the icon, moves to a survivor
        survivors = [a for a in survivors if a is not owner]
        for a in survivors:  # the new leader says so after it took the icon (same stdout)
            a.wait(LEARNED, after=t0, timeout=15)
        owners = [a for a in survivors if a.find(OWNER, after=t0)]
        assert len(owners) == 1, "exactly one survivor shows the icon"
        owner = owners[0]


def test_a_separate_process_opens_one_cascaded_window_and_keeps_its_own_layout(
    apps, tmp_path: Path, qapp
) -> None:
    cfg = config(tmp_path)
    cfg.mkdir(parents=True)
    layout = cfg / "windows.json"
    entry = {"kind": "main", "conversation": None, "geometry": geometry_blob(100, 90, 500, 400)}
    layout.write_text(json.dumps({"windows": [entry]}))
    first = start(apps, tmp_path, "first")
    first.wait(r"window opened: main \(1 open\)")
    second = start(apps, tmp_path, "second", "--separate-process")
    found = second.wait(SEPARATE)[1]
    assert tuple(int(v) for v in found.groups()) == (132, 122, 500, 400), "cascaded from A"
    assert second.find(r"window opened: main \(2 open\)") is None, "one window, not the layout"
    assert second.stop() == 0  # quit: its window is remembered in its own file
    theirs = list(cfg.glob("windows-*.json"))
    assert len(theirs) == 1 and len(saved(theirs[0])) == 1
    assert first.stop() == 0
    assert [size_of(e) for e in saved(layout)] == [(100, 90, 500, 400)], "not clobbered"
    # The next start reopens every window: the first process's and the separate one's.
    again = start(apps, tmp_path, "again")
    again.wait(r"window opened: main \(2 open\)")
    assert again.stop() == 0
    assert not list(cfg.glob("windows-*.json")), "taken over into windows.json"
    assert sorted(size_of(e) for e in saved(layout)) == [
        (100, 90, 500, 400),
        (132, 122, 500, 400),
    ]
