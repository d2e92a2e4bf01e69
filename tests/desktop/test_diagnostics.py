"""Diagnostics: Help → Copy debug info puts what a bug report needs on the clipboard and never a
token; the app logs to a rotated file in its log directory, with uncaught exceptions (any
thread) and hard crashes (faulthandler) written there with their tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import platformdirs
from PySide6.QtGui import QGuiApplication

from desktop import diagnostics, logging_setup
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


async def test_copy_debug_info_from_the_help_menu(live_server, clients, manager_for) -> None:
    client = await clients(live_server.url, "alice", "desk")
    await client.wait_synced(10)
    await wait_until(lambda: client.status.state == "live", "live")
    access = client.credentials.access_token
    refresh = await client.credentials.refresh_token()
    assert access and refresh
    diagnostics.add_fact("App bus", lambda: "primary")
    m = manager_for(client)
    window = m.open_main_window()
    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    action = next(a for a in help_menu.actions() if a.text() == "Copy &debug info")
    QGuiApplication.clipboard().setText("")
    action.trigger()
    await wait_until(lambda: QGuiApplication.clipboard().text(), "the report on the clipboard")
    text = QGuiApplication.clipboard().text()
    fields = dict(line.split(": ", 1) for line in text.splitlines())
    for name in ("Concord", "Platform", "Python", "Qt", "Keyring", "Profile", "Sync", "Sync bus"):
        assert fields.get(name), (name, text)
    assert fields["Sync"].startswith("live") and fields["Sync bus"].startswith("leader")
    assert fields["App bus"] == "primary" and "Log" in fields and "Crash log" in fields
    assert access not in text and refresh not in text and "password" not in text.lower()
    assert window.toasts is not None
    await wait_until(lambda: "Debug info copied to the clipboard" in window.toasts.texts(), "toast")


def test_anything_token_shaped_is_scrubbed() -> None:
    token = "Zq3" * 15  # 45 URL-safe characters, as the server's tokens are
    assert diagnostics.scrub(f"Last error: 401 for {token}") == "Last error: 401 for [redacted]"
    path = "/tmp/pytest-of-someone/test_copy_debug_info0/log/concord.log"
    assert diagnostics.scrub(path) == path


def test_the_log_directory(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CONCORD_LOG_DIR", raising=False)
    assert logging_setup.log_dir() == Path(platformdirs.user_log_dir("concord", appauthor=False))
    assert logging_setup.log_dir(str(tmp_path / "data")) == tmp_path / "data" / "log"
    monkeypatch.setenv("CONCORD_LOG_DIR", str(tmp_path / "logs"))
    assert logging_setup.log_dir(str(tmp_path / "data")) == tmp_path / "logs"


def run_python(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter with the app's logging set up in ``tmp_path/logs``."""
    prelude = textwrap.dedent(
        """
        import logging, threading
        from desktop import logging_setup
        logging.basicConfig(level="WARNING", format="%(levelname)s %(name)s: %(message)s")
        logging_setup.MAX_BYTES = 4000
        files = logging_setup.setup(logging_setup.log_dir())
        """
    )
    env = {**os.environ, "CONCORD_LOG_DIR": str(tmp_path / "logs"), "PYTHONFAULTHANDLER": ""}
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_uncaught_exceptions_of_any_thread_are_logged_with_a_traceback(tmp_path: Path) -> None:
    proc = run_python(
        tmp_path,
        """
        logging.getLogger("desktop.test").info("an info line, for the file only")

        def work():
            raise ZeroDivisionError("in a worker")

        t = threading.Thread(target=work, name="worker")
        t.start()
        t.join()
        raise RuntimeError("in the main thread")
        """,
    )
    assert proc.returncode == 1
    log = (tmp_path / "logs" / "concord.log").read_text()
    assert "an info line, for the file only" in log
    assert "an info line" not in proc.stderr  # the console keeps its level (WARNING)
    assert "CRITICAL desktop.crash: uncaught exception in thread worker" in log
    assert "ZeroDivisionError: in a worker" in log and ", in work" in log
    assert "Traceback (most recent call last)" in log
    assert "RuntimeError: in the main thread" in log
    assert "RuntimeError: in the main thread" in proc.stderr  # still on the console too


def test_the_log_is_rotated(tmp_path: Path) -> None:
    proc = run_python(
        tmp_path,
        """
        for i in range(400):
            logging.getLogger("desktop.test").info("line %d %s", i, "x" * 60)
        """,
    )
    assert proc.returncode == 0, proc.stderr
    logs = sorted(p.name for p in (tmp_path / "logs").glob("concord.log*"))
    assert logs == ["concord.log", *(f"concord.log.{i}" for i in range(1, 5))]
    assert all((tmp_path / "logs" / n).stat().st_size <= 4000 for n in logs)
    assert "line 399" in (tmp_path / "logs" / "concord.log").read_text()


def test_a_hard_crash_leaves_its_stacks_in_the_crash_log(tmp_path: Path) -> None:
    proc = run_python(
        tmp_path,
        """
        import faulthandler

        def deep():
            faulthandler._sigsegv()

        deep()
        """,
    )
    assert proc.returncode != 0
    crash = (tmp_path / "logs" / "crash.log").read_text()
    assert "--- concord pid" in crash
    assert "Fatal Python error: Segmentation fault" in crash
    assert "in deep" in crash
