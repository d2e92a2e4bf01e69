"""No terminal noise in normal use: the app's windows, exercised as a user would, make Qt print
no warning (recorded through ``qInstallMessageHandler``; the offscreen plugin's notes about calls
it ignores are not warnings: desktop/logging_setup.py), and the real app started with ``--demo``
prints no Qt or Python warning while the demo plays. Run this file under ``xvfb-run`` with
``QT_QPA_PLATFORM=xcb`` to check X11 as well."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QMessageLogContext, Qt, QtMsgType, qInstallMessageHandler
from PySide6.QtWidgets import QApplication

from desktop.logging_setup import qt_log_level
from tests.desktop._desktop_session import session
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def qt_messages() -> Iterator[list[str]]:
    """Every Qt message of warning level and above while the test runs."""
    seen: list[str] = []

    def record(kind: QtMsgType, context: QMessageLogContext, message: str) -> None:
        if qt_log_level(kind, message) >= logging.WARNING:  # what the app would print
            seen.append(f"{kind.name} {context.category}: {message}")

    previous = qInstallMessageHandler(record)
    try:
        yield seen
    finally:
        qInstallMessageHandler(previous)


async def test_using_the_windows_makes_qt_warn_nothing(
    live_server, clients, manager_for, qtbot, qt_messages
) -> None:
    alice = await clients(live_server.url, "alice", "desk")
    bob = await clients(live_server.url, "bob", "phone")
    one = await alice.create_conversation("Design review", ["bob"])
    two = await alice.create_conversation("Lunch on Friday", ["bob"])
    await alice.wait_synced(10)
    m = manager_for(alice)
    window = m.open_main_window(one.id)
    window.activateWindow()
    await wait_until(window.isActiveWindow, "active")
    pane = window.pane
    # Write, receive, switch, rename inline, pin, narrow the window, pop a conversation out,
    # open every dialog, copy the debug info, and a conversation deleted while shown.
    pane.composer.setFocus()
    qtbot.keyClicks(pane.composer, "hello https://example.org ")
    pane.composer.insertPlainText("👋")  # QTest types one UTF-16 unit at a time: not emoji
    qtbot.keyClick(pane.composer, Qt.Key.Key_Return)
    await wait_until(lambda: bob.conversation(one.id), "bob sees it")
    await bob.send_message(one.id, "hi!")
    await wait_until(lambda: pane.messages.message_model().rowCount() == 2, "both messages")
    window.open_conversation(two.id)
    pane.start_rename()
    pane.title_edit.insert(" 🍜")
    qtbot.keyClick(pane.title_edit, Qt.Key.Key_Return)
    pane.pin_button.click()
    window.resize(360, 300)
    popout = m.open_conversation_window(one.id)
    m.open_settings(window)
    m.quick_switch(window)
    m.open_inspector(window)
    window.copy_debug_info()
    assert window.toasts is not None
    toasts = window.toasts
    await wait_until(lambda: "Debug info copied to the clipboard" in toasts.texts(), "copied")
    await alice.delete_conversation(two.id)
    await wait_until(lambda: pane.conversation_id() is None, "the pane left it")
    for w in QApplication.topLevelWidgets():
        if w.isVisible() and w not in (window, popout):
            w.close()
    popout.close()
    await alice.wait_synced(10)
    assert qt_messages == [], "\n".join(qt_messages)


@pytest.mark.slow
@pytest.mark.parametrize("platform", ["offscreen", "x11"])
def test_the_app_with_the_demo_prints_no_warning(tmp_path: Path, platform: str) -> None:
    """The real app, on the platform plugin named (X11: Xvfb with a D-Bus session and a tray),
    with the demo playing: nothing at all on the terminal."""
    with contextlib.ExitStack() as stack:
        base = dict(os.environ, QT_QPA_PLATFORM="offscreen")
        env = stack.enter_context(session(tmp_path)) if platform == "x11" else base
        env = {
            **env,
            "CONCORD_LOG": "WARNING",
            "CONCORD_DATA_DIR": str(tmp_path / "data"),
            "CONCORD_CONFIG_DIR": str(tmp_path / "config"),
            "CONCORD_RUNTIME_DIR": str(tmp_path / "run"),
            "PYTHONWARNINGS": "default",  # every Python warning, each once
        }
        log = tmp_path / "data" / "log" / "concord.log"
        out = tmp_path / "out.txt"
        with out.open("w") as sink:
            proc = subprocess.Popen(
                [sys.executable, "-m", "desktop", "--demo"],
                cwd=ROOT,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
            try:
                deadline = time.monotonic() + 60
                while "desktop.demo: step" not in _read(log):  # the demo has played a step
                    assert proc.poll() is None and time.monotonic() < deadline, out.read_text()
                    time.sleep(0.2)
            finally:
                proc.terminate()
                code = proc.wait(30)
    output = out.read_text()
    assert code == 0, output[-3000:]
    # Nothing at all: no Qt message, no Python warning, no log line at WARNING or above.
    assert output.strip() == "", output[-3000:]


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
