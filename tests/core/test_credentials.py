"""Tokens: the refresh token lives in the OS keyring (a real gnome-keyring over D-Bus here), or,
with no secure backend, in memory only — with an error event that says so in words."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from pathlib import Path

import keyring
import keyring.backend
import keyring.backends.fail
import pytest

from core.credentials import Credentials
from tests.support.live_server import PASSWORD
from tests.support.procs import ROOT
from tests.support.waiting import wait_until


@pytest.fixture
def fail_keyring():  # type: ignore[no-untyped-def]
    before = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    yield
    keyring.set_keyring(before)


async def test_without_a_keyring_the_session_goes_on_in_memory(
    live_server, clients, fail_keyring, tmp_path: Path, caplog
) -> None:
    errors: list = []
    a = await clients(live_server.url, "alice", "d1")
    a.events.error.connect(errors.append)
    await wait_until(lambda: a.status.state == "live", what="live")
    assert a.credentials.keyring_error and "no secure keyring" in a.credentials.keyring_error
    token = await a.credentials.refresh_token()
    assert token  # kept for this session
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), f"token written to {path}"
    assert token not in caplog.text and (a.credentials.access_token or "x") not in caplog.text


class SlowKeyring(keyring.backend.KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def get_password(self, service: str, username: str) -> str | None:
        time.sleep(1.0)
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        time.sleep(1.0)

    def delete_password(self, service: str, username: str) -> None:
        time.sleep(1.0)


async def test_a_hanging_keyring_never_blocks_the_loop() -> None:
    before = keyring.get_keyring()
    keyring.set_keyring(SlowKeyring())
    try:
        creds = Credentials("p", timeout_s=0.2)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            for _ in range(100):
                ticks += 1
                await asyncio.sleep(0.01)

        t = asyncio.create_task(ticker())
        assert await creds.refresh_token() is None
        assert "did not answer" in (creds.keyring_error or "")
        t.cancel()
        assert ticks >= 10  # the loop kept running while the keyring hung
    finally:
        keyring.set_keyring(before)


def test_refresh_token_round_trips_through_gnome_keyring(live_server, tmp_path: Path) -> None:
    missing = [b for b in ("dbus-run-session", "gnome-keyring-daemon") if not shutil.which(b)]
    assert not missing, f"install {missing} (Debian: dbus gnome-keyring) to test the real keyring"
    home = tmp_path / "home"
    home.mkdir()
    script = (
        "echo -n ci-keyring-pw | gnome-keyring-daemon --unlock --components=secrets "
        f">/dev/null 2>&1; exec {sys.executable} -m tests.core._keyring_proc "
        f"{live_server.url} {tmp_path / 'dev'} {PASSWORD}"
    )
    env = {
        **{k: v for k, v in os.environ.items() if k != "PYTHON_KEYRING_BACKEND"},  # the real one
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / ".local/share"),
        "XDG_RUNTIME_DIR": str(tmp_path / "xdg-run"),
    }
    (tmp_path / "xdg-run").mkdir(mode=0o700)
    import subprocess

    proc = subprocess.run(
        ["dbus-run-session", "--", "sh", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["backend"] == "Keyring" and result["errors"] == [None, None], result
    assert result["first_live"] and result["second_live"], result
    assert not result["token_in_files"]
