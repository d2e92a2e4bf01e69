"""The launcher's "New Window" while Concord runs: the second ``concord`` only asks the running
process for a window, so it forwards its startup notification (``DESKTOP_STARTUP_ID`` on X11,
``XDG_ACTIVATION_TOKEN`` on Wayland) and the process that opens the window uses it: the window
gets the focus the launcher granted and the launcher's busy cursor stops."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from desktop import startup
from desktop.instance import clean_startup
from tests.desktop._desktop_session import session
from tests.desktop._startup_listener import StartupListener
from tests.support.app_process import ROOT, App, start
from tests.support.waiting import wait_until


def test_the_launch_s_notification_is_read_before_qt_takes_it() -> None:
    env = {"DESKTOP_STARTUP_ID": "kde-1_TIME42", "XDG_ACTIVATION_TOKEN": "tok", "HOME": "/h"}
    assert startup.from_environment(env) == {"x11": "kde-1_TIME42", "wayland": "tok"}
    assert startup.from_environment({}) == {}
    # What comes over the bus is checked: known keys, short strings only.
    assert clean_startup({"x11": "id", "wayland": 3, "other": "x"}) == {"x11": "id"}
    assert clean_startup({"x11": "i" * 600}) == {} and clean_startup("x") == {}


def test_startup_messages_are_chunked_and_quoted() -> None:
    chunks = startup.message_chunks("remove: ID=" + "a" * 30)
    assert [len(c) for c in chunks] == [20, 20, 20]
    assert b"".join(chunks).rstrip(b"\0").decode() == "remove: ID=" + "a" * 30
    assert startup.quote("plain_TIME1") == "plain_TIME1"
    assert startup.quote('with space "q"') == '"with space \\"q\\""'


async def test_a_wayland_token_is_handed_to_qt_when_the_window_activates(qapp) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtWidgets import QWidget

    os.environ.pop("XDG_ACTIVATION_TOKEN", None)
    seen: list[str | None] = []

    class Window(QWidget):
        def activateWindow(self) -> None:
            seen.append(os.environ.get("XDG_ACTIVATION_TOKEN"))
            super().activateWindow()

    window = Window()
    window.showMinimized()
    startup.activate(window, {"wayland": "token-1"}, platform="wayland")
    assert seen == ["token-1"], "in the environment when Qt's requestActivate() runs"
    await wait_until(lambda: not window.isMinimized() and window.isVisible(), what="shown")
    os.environ.pop("XDG_ACTIVATION_TOKEN", None)
    startup.activate(window, {"wayland": "token-2"}, platform="xcb")
    assert "XDG_ACTIVATION_TOKEN" not in os.environ, "only on Wayland"
    window.close()


@pytest.mark.skipif(sys.platform != "linux", reason="X11 startup notification")
def test_new_window_forwards_the_x11_startup_id(tmp_path: Path) -> None:
    with session(tmp_path) as env:
        listener = StartupListener(env["DISPLAY"])
        apps: list[App] = []
        try:
            primary = start(apps, tmp_path, "primary", session=env)
            primary.wait(r"window opened: main \(1 open\)")
            launch_id = "launcher-7_TIME4242"
            second = subprocess.run(
                [sys.executable, "-m", "desktop", "--new-window"],
                cwd=ROOT,
                env={
                    **env,
                    "CONCORD_DATA_DIR": str(tmp_path / "data"),
                    "CONCORD_CONFIG_DIR": str(tmp_path / "config"),
                    "CONCORD_RUNTIME_DIR": str(tmp_path / "run"),
                    "DESKTOP_STARTUP_ID": launch_id,
                },
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert second.returncode == 0, second.stdout + second.stderr
            primary.wait(r"window opened: main \(2 open\)")
            primary.wait(r"window activated for a launch \(x11\)")
            # The launcher is told the launch is done (its busy cursor stops) ...
            assert listener.wait_for("remove:") == f"remove: ID={launch_id}"
            # ... and the new window carries the launch's ID (its timestamp grants the focus).
            assert launch_id in windows_with_startup_id(env)
        finally:
            for app in apps:
                app.kill()
            listener.close()


def windows_with_startup_id(env: dict[str, str]) -> list[str]:
    """The ``_NET_STARTUP_ID`` of every top-level window on the display that has one."""
    tree = subprocess.run(
        ["xwininfo", "-root", "-children"], env=env, capture_output=True, text=True, check=True
    ).stdout
    found = []
    for wid in re.findall(r"^\s+(0x[0-9a-f]+) ", tree, re.MULTILINE):
        prop = subprocess.run(
            ["xprop", "-id", wid, "_NET_STARTUP_ID"], env=env, capture_output=True, text=True
        ).stdout
        if m := re.search(r'= "(.*)"', prop):
            found.append(m[1])
    return found
