"""Screenshots under a real X server (Xvfb), saved under the test run's artifacts folder
(``test-artifacts/`` or ``$CONCORD_ARTIFACTS``): the main window light and dark, and the status
bar in every sync state."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from PySide6.QtGui import QImage

ROOT = Path(__file__).resolve().parents[2]


def luminance(path: Path) -> float:
    image = QImage(str(path))
    total, n = 0.0, 0
    for x in range(0, image.width(), 9):
        for y in range(0, image.height(), 9):
            c = image.pixelColor(x, y)
            total += 0.2126 * c.red() + 0.7152 * c.green() + 0.0722 * c.blue()
            n += 1
    return total / max(n, 1)


def test_main_window_screenshots_light_and_dark(tmp_path: Path) -> None:
    assert shutil.which("Xvfb"), "install xvfb (Debian: xvfb) for the screenshot test"
    out = Path(os.environ.get("CONCORD_ARTIFACTS", ROOT / "test-artifacts")) / "screenshots"
    read_fd, write_fd = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as f:
            display = f.readline().strip()
        assert display, "Xvfb did not start"
        env = {
            **os.environ,
            "DISPLAY": f":{display}",
            "QT_QPA_PLATFORM": "xcb",
            "XDG_RUNTIME_DIR": str(tmp_path / "xdg"),
        }
        (tmp_path / "xdg").mkdir(mode=0o700)
        scripts = ("_screenshots", "_status_shots", "_conversation_shots", "_search_shots")
        for script in (f"tests.desktop.{name}" for name in scripts):
            proc = subprocess.run(
                [sys.executable, "-m", script, str(out)],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert proc.returncode == 0, proc.stderr[-3000:]
    finally:
        xvfb.terminate()
        xvfb.wait(10)
    light, dark = out / "main-light.png", out / "main-dark.png"
    assert light.stat().st_size > 10_000 and dark.stat().st_size > 10_000
    assert QImage(str(light)).width() >= 900
    assert luminance(dark) < luminance(light) - 60, "the dark theme must actually be dark"
    for theme in ("light", "dark"):  # the list and message views (_conversation_shots.py)
        for name in ("chat", "edit", "chat-narrow", "empty", "empty-conversation", "settings"):
            assert (out / f"{name}-{theme}.png").stat().st_size > 10_000, f"{name}-{theme}"
    assert luminance(out / "chat-dark.png") < luminance(out / "chat-light.png") - 60
    for name in ("search", "find"):  # the Ctrl+K popup and the Ctrl+F bar (_search_shots.py)
        assert luminance(out / f"{name}-dark.png") < luminance(out / f"{name}-light.png") - 60
    states = QImage(str(out / "status-states.png"))  # a status bar per sync state, stacked
    assert states.width() >= 700 and states.height() >= 8 * 20
