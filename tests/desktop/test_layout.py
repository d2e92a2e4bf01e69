"""Layout files per process (desktop/layout.py): one writer per file, the first process takes
over what quit separate processes left, and a separate process whose windows the user closed
forgets them. The real processes are in test_separate_process.py."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QRect
from PySide6.QtGui import QGuiApplication

from desktop.layout import CASCADE_PX, LayoutStore, cascaded


def entry(name: str) -> dict:
    return {"kind": "main", "conversation": name, "geometry": ""}


def test_each_process_writes_only_its_own_file(tmp_path: Path) -> None:
    first = LayoutStore(tmp_path)
    a, b = LayoutStore(tmp_path, primary=False), LayoutStore(tmp_path, primary=False)
    first.save([entry("first")])
    a.save([entry("a1"), entry("a2")])
    b.save([entry("b")])
    assert json.loads(first.path.read_text())["windows"] == [entry("first")]
    assert first.path.name == "windows.json" and a.path != b.path
    b.save([])  # the user closed the last window of process b: forgotten
    assert not b.path.exists()
    first.save([])  # the first process never forgets by an empty save (it keeps its last one)
    assert first.path.exists()
    # The next start: the first process reopens its own windows and process a's, then takes
    # them over.
    again = LayoutStore(tmp_path)
    assert [e["conversation"] for e in again.load()] == ["first", "a1", "a2"]
    assert again.orphans() == [a.path]
    again.save(again.load())
    again.adopt_orphans()
    assert again.orphans() == [] and len(LayoutStore(tmp_path).load()) == 3
    assert LayoutStore(tmp_path, primary=False).load() == [], "a separate process adopts none"


def test_damaged_files_open_nothing_wrong(tmp_path: Path) -> None:
    (tmp_path / "windows.json").write_text("{not json")
    (tmp_path / "windows-x.json").write_text(json.dumps({"windows": ["junk", entry("ok")] * 30}))
    loaded = LayoutStore(tmp_path).load()
    assert loaded and all(e == entry("ok") for e in loaded) and len(loaded) <= 20


def test_cascade_steps_down_and_stays_on_the_screen(qapp) -> None:  # type: ignore[no-untyped-def]
    screen = QGuiApplication.primaryScreen()
    area = screen.availableGeometry()
    assert cascaded((area.x() + 10, area.y() + 20, 300, 200)) == QRect(
        area.x() + 10 + CASCADE_PX, area.y() + 20 + CASCADE_PX, 300, 200
    )
    # At the bottom-right corner: back to the top-left, never off the screen.
    moved = cascaded((area.right() - 300, area.bottom() - 200, 300, 200))
    assert area.contains(moved) and moved.size().width() == 300
    # Bigger than the screen: made to fit.
    huge = cascaded((0, 0, area.width() * 2, area.height() * 2))
    assert area.contains(huge)
