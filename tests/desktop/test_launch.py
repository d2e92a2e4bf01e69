"""The app as a user starts it: real ``concord`` processes (offscreen) on the embedded server."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core import ClientConfig
from core.leadership import bus_scope
from desktop.app import DEFAULT_SETTINGS, SETTING_KEYS
from desktop.profile import Profile

ROOT = Path(__file__).resolve().parents[2]


class AppProc:
    """A ``python -m desktop`` process whose log lines are collected as they come."""

    def __init__(self, tmp: Path, *args: str) -> None:
        self.env = {
            **os.environ,
            "QT_QPA_PLATFORM": "offscreen",
            "CONCORD_LOG": "INFO",
            "CONCORD_DATA_DIR": str(tmp / "data"),
            "CONCORD_CONFIG_DIR": str(tmp / "config"),
            "CONCORD_RUNTIME_DIR": str(tmp / "run"),
            "PYTHONUNBUFFERED": "1",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "desktop", *args],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        for line in self.seen:
            if text in line:
                return line
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no {text!r} in the app's output:\n{''.join(self.seen)[-3000:]}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


@pytest.fixture
def primary(tmp_path: Path):  # type: ignore[no-untyped-def]
    app = AppProc(tmp_path)
    app.wait_for("ready", 60)
    yield app
    app.stop()


def test_second_launch_opens_a_window_in_the_running_process(primary, tmp_path: Path) -> None:
    primary.wait_for("window opened: main (1 open)")
    second = subprocess.run(
        [sys.executable, "-m", "desktop"],
        cwd=ROOT,
        env=primary.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Asked the running Concord to open a window" in second.stdout
    primary.wait_for("window opened: main (2 open)")
    assert primary.stop() == 0  # SIGTERM: a clean quit, never a hang


def test_theme_change_in_one_process_reaches_another(primary, tmp_path: Path) -> None:
    other = AppProc(tmp_path, "--separate-process")
    try:
        other.wait_for("ready", 60)
        # A third member of the profile's bus changes the theme, as a settings dialog would.
        import asyncio

        from core.bus import LocalBus, PreferenceStore, sync_state

        profile = Profile.resolve(None, None, None, tmp_path / "data", tmp_path / "config")
        cfg = ClientConfig(
            server_url="http://unused",
            data_dir=profile.data_dir / "cache",
            username=profile.username,
            profile=profile.key,
        )

        async def change_theme() -> None:
            bus = await LocalBus.open(scope=bus_scope(cfg), runtime_dir=tmp_path / "run")
            prefs = PreferenceStore(dict(DEFAULT_SETTINGS))
            handle = sync_state(prefs, "settings", bus=bus, sync_keys=SETTING_KEYS)
            await handle.wait_synced()
            prefs.set("theme", "dark")
            await asyncio.sleep(0.5)  # let the post leave before this member goes away
            handle.close()
            await bus.close()

        asyncio.run(change_theme())
        primary.wait_for("theme applied: dark")
        other.wait_for("theme applied: dark")
    finally:
        assert other.stop() == 0


def test_self_test_passes_and_reports(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path / "xdg")}
    (tmp_path / "xdg").mkdir(mode=0o700)
    proc = subprocess.run(
        [sys.executable, "-m", "desktop", "--self-test"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for check in ("Qt binding", "keyring", "local bus", "embedded server", "window renders"):
        assert f"[PASS] {check}" in proc.stdout
    assert "all checks passed" in proc.stdout


def test_a_network_change_reported_by_qt_reconnects_the_client(qapp) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtNetwork import QNetworkInformation

    from desktop.app import watch_network

    class Recorder:
        calls = 0

        def network_changed(self) -> None:
            self.calls += 1

    client = Recorder()
    info = watch_network(client)
    assert info is not None, "this machine has a network-information backend (glib)"
    info.reachabilityChanged.emit(QNetworkInformation.Reachability.Online)
    assert client.calls == 1
    info.reachabilityChanged.disconnect()
