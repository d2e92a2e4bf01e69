"""The embedded server outlives the process that hosts it, as a new user would find out: real
``concord`` processes (offscreen) on one profile; the host is killed with SIGKILL, twice in a
row, and a survivor serves the same data again; every window is Live within 2 s and the actions
queued meanwhile are on the server. A normal quit of the host hands over too.

Each process logs its sync status (``status: <state> (<detail>) as <role> [sync epoch N]``) and
reads test commands from stdin (``CONCORD_TEST_HOOKS=stdin``, see desktop/testhook.py).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.app_process import (
    CONCORD,
    HOSTED,
    LIMIT_S,
    ROOT,
    STATUS,
    App,
    server_snapshot,
    start,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL/SIGSTOP are POSIX")


def fail_over(
    tmp: Path, host: App, survivors: list[App], cid: str, round_: int, port_taken: bool = False
) -> App:
    """Freeze the host, queue actions in every survivor, SIGKILL the host; returns the new
    host once every survivor is Live again and its actions are on the server.

    ``port_taken``: another program takes the dead host's port before the survivors notice
    (they are stopped meanwhile; times count from when they continue), so the server comes
    back on another port, which must reach every survivor."""
    old_url = host.last(HOSTED)[1][1]
    os.kill(host.proc.pid, signal.SIGSTOP)  # holds its locks and serves nothing: actions queue
    texts = []
    for s in survivors:
        texts.append(f"round {round_}: sent by {s.name} while {host.name} died")
        s.do(f"send {cid} {texts[-1]}", rf"hook: queued send {cid}")
    title = f"Renamed by {survivors[-1].name} in round {round_}"
    survivors[-1].do(f"rename {cid} {title}", rf"hook: queued rename {cid}")

    blocker = None
    if port_taken:
        for s in survivors:
            os.kill(s.proc.pid, signal.SIGSTOP)
    t0 = time.monotonic()
    host.kill()
    if port_taken:
        blocker = socket.socket()
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", int(old_url.rsplit(":", 1)[1])))
        blocker.listen()
        t0 = time.monotonic()
        for s in survivors:
            os.kill(s.proc.pid, signal.SIGCONT)
    try:
        for s in survivors:
            s.send("synced")
        times = {}
        for s in survivors:
            live_at = s.live_again(t0)
            synced_at, _ = s.wait("hook: synced", after=t0)
            times[s.name] = (live_at - t0, synced_at - t0)
    finally:
        if blocker is not None:
            blocker.close()
    hosts = [s for s in survivors if s.find(HOSTED, after=t0)]
    assert len(hosts) == 1, f"exactly one survivor serves: {[s.name for s in hosts]}"
    new_host = hosts[0]
    hosted_at, m = new_host.last(HOSTED)
    url = m[1]
    assert (url != old_url) == port_taken, (old_url, url)
    for s in survivors:  # where it is served now reached every process
        assert s.find(f"embedded server at {url} ", after=t0) is not None, s.name
    report = ", ".join(
        f"{name} live {live:.3f} s, queued actions delivered {synced:.3f} s"
        for name, (live, synced) in times.items()
    )
    print(
        f"\nfailover {round_}: SIGKILL {host.name} -> {new_host.name} serves {url} after "
        f"{hosted_at - t0:.3f} s{' (old port taken)' if port_taken else ''}; {report}"
    )
    for name, (live, synced) in times.items():
        assert live < LIMIT_S, f"{name} Live only {live:.3f} s after the SIGKILL"
        assert synced < LIMIT_S, f"{name}'s queued actions on the server only after {synced:.3f} s"

    snap = server_snapshot(tmp, url)
    conv = next(c for c in snap.conversations if c.id == cid)
    assert conv.title == title
    bodies = {msg.body for msg in snap.messages.get(cid, [])}
    assert set(texts) <= bodies, f"missing on the server: {set(texts) - bodies}"
    return new_host


@pytest.mark.timeout(300)
def test_embedded_server_survives_sigkill_of_its_host_again_and_again(tmp_path: Path) -> None:
    apps: list[App] = []
    try:
        a = start(apps, tmp_path, "A")  # `concord`: the first process hosts
        assert a.find(HOSTED) is not None
        b = start(apps, tmp_path, "B", "--separate-process")
        assert b.find(HOSTED) is None
        cid = b.do("create Failover", r"hook: created (\S+)")[1]
        b.do("synced", "hook: synced")

        host = fail_over(tmp_path, a, [b], cid, 1)
        assert host is b

        # A plain `concord` now opens a window in the survivor (not another stuck one).
        again = subprocess.run(
            [str(CONCORD)] if CONCORD.exists() else [sys.executable, "-m", "desktop"],
            cwd=ROOT,
            env={**os.environ, **_env(tmp_path)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert again.returncode == 0, again.stdout + again.stderr
        b.wait(re.escape("window opened: main (2 open)"))

        c = start(apps, tmp_path, "C", "--separate-process")
        d = start(apps, tmp_path, "D", "--separate-process")
        host = fail_over(tmp_path, b, [c, d], cid, 2)  # either may win; both must be Live

        other = d if host is c else c
        e = start(apps, tmp_path, "E", "--separate-process")
        survivors = [other, e]
        host = fail_over(tmp_path, host, survivors, cid, 3, port_taken=True)

        # A normal quit of the host hands the server over as well, and the thread stops cleanly.
        other = next(x for x in survivors if x is not host)
        t0 = time.monotonic()
        assert host.stop() == 0
        other.wait(HOSTED, after=t0)
        live_at = other.live_again(t0)
        print(f"quit of {host.name}: {other.name} Live {live_at - t0:.3f} s after SIGTERM")
        assert live_at - t0 < LIMIT_S
        assert other.stop() == 0
        for app in apps:
            assert app.find(STATUS, where=lambda m: m[1] == "sign_in_required") is None, app.name
            assert app.find("Traceback") is None, app.name
    finally:
        for app in apps:
            app.kill()
            (tmp_path / f"{app.name}.log").write_text("".join(line for _, line in app.lines))


def _env(tmp: Path) -> dict[str, str]:
    return {
        "QT_QPA_PLATFORM": "offscreen",
        "CONCORD_DATA_DIR": str(tmp / "data"),
        "CONCORD_CONFIG_DIR": str(tmp / "config"),
        "CONCORD_RUNTIME_DIR": str(tmp / "run"),
    }
