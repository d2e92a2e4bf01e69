"""The app's identity on the desktop: one app id (desktop.identity.APP_ID) set as Qt's
desktopFileName, and the app icon, both in place before a window or the tray shows; the tray
icon is never shown empty; the launch and the self-test print neither "Cannot set badge number"
nor "No Icon set" on a real X11 + D-Bus desktop with a system tray."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from PySide6.QtCore import QByteArray
from PySide6.QtGui import QGuiApplication, QImage
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QApplication, QSystemTrayIcon

import server
from desktop import identity
from desktop.identity import APP_ID, APP_NAME, ICON_SIZES, VERSION
from desktop.tray import TRAY_SIZES, Tray, badged_icon, render_icon
from tests.desktop._desktop_session import session
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
WARNINGS = ("Cannot set badge number", "No Icon set")


@pytest.fixture
def restore_identity(qapp):  # type: ignore[no-untyped-def]
    """The session's QApplication is shared: put back what a test's apply_identity changed."""
    before = (qapp.applicationName(), QGuiApplication.desktopFileName(), qapp.windowIcon())
    yield qapp
    qapp.setApplicationName(before[0])
    QGuiApplication.setDesktopFileName(before[1])
    qapp.setWindowIcon(before[2])


def test_the_app_id_is_valid_for_every_platform_that_uses_it() -> None:
    # AppStream/Flatpak/D-Bus (no '-'), macOS CFBundleIdentifier (no '_'), Windows
    # AppUserModelID (<= 128 chars, no spaces): reverse DNS of plain alphanumeric parts.
    assert re.fullmatch(r"[a-z]+(\.[A-Za-z][A-Za-z0-9]*){2,}", APP_ID)
    assert len(APP_ID) <= 128 and APP_ID.split(".")[-1] == APP_NAME


def test_the_version_is_the_package_version() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert VERSION == server.__version__ == pyproject["project"]["version"]


def test_the_icons_ship_inside_the_package_as_in_packaging() -> None:
    files = identity.icon_files()
    assert sorted(files) == list(ICON_SIZES)
    linux = ROOT / "packaging" / "linux" / "icons"
    svg = identity.RESOURCES / "icons" / f"{APP_ID}.svg"
    assert svg.read_bytes() == (linux / f"{APP_ID}.svg").read_bytes()
    assert QSvgRenderer(QByteArray(svg.read_bytes())).isValid()
    for size, path in files.items():
        assert path.read_bytes() == (linux / f"{size}x{size}" / f"{APP_ID}.png").read_bytes()
        image = QImage(str(path))
        assert (image.width(), image.height()) == (size, size)
        assert image.hasAlphaChannel() and image.pixelColor(0, size - 1).alpha() == 0
        mid = image.pixelColor(size * 2 // 3, size * 2 // 3)  # inside the front bubble
        assert mid.alpha() == 255 and mid.blue() > mid.red()


def test_main_sets_the_identity_before_the_event_loop_starts(
    restore_identity, monkeypatch, tmp_path: Path
) -> None:
    import desktop.loop
    from desktop.app import main

    seen: dict[str, object] = {}

    def run_qt(_amain):  # type: ignore[no-untyped-def]
        app = QApplication.instance()
        seen.update(
            desktop_file=QGuiApplication.desktopFileName(),
            icon_sizes=[s.width() for s in app.windowIcon().availableSizes()],
            name=app.applicationName(),
            version=app.applicationVersion(),
        )
        return 0

    monkeypatch.setattr(desktop.loop, "run_qt", run_qt)
    assert main(["--data-dir", str(tmp_path / "d"), "--config-dir", str(tmp_path / "c")]) == 0
    assert seen == {
        "desktop_file": APP_ID,
        "icon_sizes": list(ICON_SIZES),
        "name": APP_NAME,  # also X11's WM_CLASS class: the .desktop file's StartupWMClass
        "version": VERSION,
    }


async def test_the_tray_icon_is_set_before_it_shows(
    live_server, clients, manager_for, restore_identity, monkeypatch, qtlog
) -> None:
    identity.apply_identity(restore_identity)
    monkeypatch.setattr(QSystemTrayIcon, "isSystemTrayAvailable", staticmethod(lambda: True))
    shown: list[bool] = []
    real_show = QSystemTrayIcon.show

    def show(icon: QSystemTrayIcon) -> None:
        shown.append(icon.icon().isNull())
        real_show(icon)

    monkeypatch.setattr(QSystemTrayIcon, "show", show)
    alice = await clients(live_server.url, "alice", "desk")
    bob = await clients(live_server.url, "bob", "phone")
    conv = await bob.create_conversation("hello", ["alice"])
    await bob.send_message(conv.id, "hi")
    await bob.wait_synced(10)
    m = manager_for(alice)
    await wait_until(lambda: alice.conversation(conv.id), what="alice sees it")
    tray = Tray(m, m.prefs)
    try:
        assert shown == [False], "the tray icon was shown without an image"
        assert tray.icon is not None and not tray.icon.icon().isNull()
        assert [s.width() for s in tray.icon.icon().availableSizes()] == list(TRAY_SIZES)
        await wait_until(lambda: tray.unread == 1, what="the unread badge")
        assert not QApplication.instance().windowIcon().isNull()
        messages = [r.message for r in qtlog.records]
        assert not [m for m in messages if any(w in m for w in WARNINGS)], messages
    finally:
        tray.close()


def test_the_badge_is_drawn_over_the_app_icon(qapp) -> None:
    plain, badged = render_icon(0, 22).toImage(), render_icon(3, 22).toImage()
    assert not plain.isNull() and (plain.width(), plain.height()) == (22, 22)
    corner = badged.pixelColor(18, 4)  # the badge sits in the top right corner
    assert corner.red() > 180 and corner.green() < 90 and plain.pixelColor(18, 4).red() < 100
    assert badged_icon(0).availableSizes() == identity.app_icon().availableSizes()
    assert not badged_icon(120, TRAY_SIZES).isNull()


def _no_warnings(output: str) -> None:
    found = [line for line in output.splitlines() if any(w in line for w in WARNINGS)]
    assert not found, "\n".join(found)


def test_self_test_on_a_desktop_with_a_tray_warns_nothing(tmp_path: Path) -> None:
    with session(tmp_path) as env:
        proc = subprocess.run(
            [sys.executable, "-m", "desktop", "--self-test"],
            cwd=ROOT,
            env={**env, "HOME": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"[PASS] app identity: {APP_ID} {VERSION}" in proc.stdout
    assert "tray icon set" in proc.stdout, "the session's system tray was not used"
    _no_warnings(proc.stdout + proc.stderr)


def test_a_launch_on_a_desktop_with_a_tray_warns_nothing(tmp_path: Path) -> None:
    with session(tmp_path) as env:
        env = {
            **env,
            "CONCORD_LOG": "INFO",
            "CONCORD_DATA_DIR": str(tmp_path / "data"),
            "CONCORD_CONFIG_DIR": str(tmp_path / "config"),
            "CONCORD_RUNTIME_DIR": str(tmp_path / "run"),
        }
        log = tmp_path / "app.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "desktop"], cwd=ROOT, env=env, stdout=out, stderr=out
            )
            try:
                deadline = time.monotonic() + 60
                while "desktop.app: ready" not in log.read_text() and proc.poll() is None:
                    assert time.monotonic() < deadline, log.read_text()[-3000:]
                    time.sleep(0.1)
                time.sleep(0.5)  # any late unread change sets the badge again
            finally:
                proc.terminate()
                code = proc.wait(20)
    output = log.read_text()
    assert code == 0 and "desktop.app: ready" in output, output[-3000:]
    _no_warnings(output)
