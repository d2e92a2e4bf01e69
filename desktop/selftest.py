"""``concord --self-test``: checks the Qt binding, the app's identity and icon, the keyring, the
local bus, a round trip through an embedded server and that a window and the tray icon render —
offscreen — and prints a report.
Exit code 0 only if every check passes."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

Check = Callable[[], Awaitable[str]]


async def check_qt() -> str:
    import PySide6
    from PySide6.QtCore import QObject, Signal

    class Emitter(QObject):
        flag = Signal(bool)

    seen: list[bool] = []
    e = Emitter()
    e.flag.connect(seen.append)
    for _ in range(2000):
        e.flag.emit(True)
    assert len(seen) == 2000, "signals were lost"
    return f"PySide6 {PySide6.__version__} on Python {sys.version.split()[0]}"


async def check_keyring() -> str:
    import keyring

    from core.credentials import backend_problem

    backend = type(keyring.get_keyring())
    name = f"{backend.__module__}.{backend.__name__}"  # every backend's class is "Keyring"
    problem = await asyncio.to_thread(backend_problem)
    if problem:
        return f"no secure backend ({name}): sign-in is kept for the session only"
    return f"secure backend {name}"


def _bus_dir() -> Path:
    """A folder of its own for the test bus, straight in the temp dir, or in /tmp where that is
    too deep (macOS's /private/var/folders/...): the socket's path must stay under 100 bytes."""
    base = tempfile.gettempdir()
    if len(os.fsencode(base)) > 60 and os.name == "posix" and os.path.isdir("/tmp"):
        base = "/tmp"
    return Path(tempfile.mkdtemp(prefix="cb-", dir=base))


def _write_report(path: str, report: str) -> None:
    Path(path).write_text(report, encoding="utf-8")


async def check_bus() -> str:
    from core.bus import BroadcastChannel, LocalBus

    run = _bus_dir()
    try:
        a = await LocalBus.open(scope="selftest", runtime_dir=run)
        b = await LocalBus.open(scope="selftest", runtime_dir=run)
        try:
            if not (a.cross_process and b.cross_process):
                raise AssertionError(f"no local bus in {run}: windows cannot talk to each other")
            got: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            ca, cb = BroadcastChannel("t", bus=a), BroadcastChannel("t", bus=b)

            def on_message(ev: Any) -> None:
                if not got.done():
                    got.set_result(ev.data)

            cb.on_message = on_message
            ca.post_message({"ping": 1})
            data = await asyncio.wait_for(got, 5)
            ca.close()
            cb.close()
        finally:
            await b.close()
            await a.close()
    finally:
        shutil.rmtree(run, ignore_errors=True)
    assert data == {"ping": 1}
    return "cross-process hub"


async def check_identity() -> str:
    from PySide6.QtGui import QGuiApplication

    from desktop.identity import APP_ID, ICON_SIZES, icon_files

    app = QGuiApplication.instance()
    assert isinstance(app, QGuiApplication)
    assert QGuiApplication.desktopFileName() == APP_ID, "the desktop file name is not set"
    missing = [size for size in ICON_SIZES if size not in icon_files()]
    assert not missing, f"icon sizes missing from the installation: {missing}"
    assert not app.windowIcon().isNull(), "no window icon"
    return f"{APP_ID} {app.applicationVersion()}, icon {ICON_SIZES[0]}-{ICON_SIZES[-1]} px"


async def check_server_and_window(tmp: Path) -> tuple[str, str]:
    from PySide6.QtWidgets import QApplication

    from core import Client, ClientConfig
    from core.bus import PreferenceStore
    from desktop.embedded import EmbeddedServer
    from desktop.manager import WindowManager
    from desktop.profile import Profile
    from desktop.tray import Tray
    from ui.bridge import ClientBridge

    embedded = EmbeddedServer(tmp / "server")
    await asyncio.to_thread(embedded.start)
    client = None
    try:
        token = await embedded.account_token("selftest")
        client = await Client.open(
            ClientConfig(
                server_url=embedded.url,
                data_dir=tmp / "cache",
                username="selftest",
                runtime_dir=tmp / "run2",
                profile="selftest",
                refresh_token=token,
            )
        )
        t0 = time.perf_counter()
        conv = await client.create_conversation("self-test")
        await client.wait_synced(10)
        view = client.conversation(conv.id)
        assert view is not None and not view.pending, "the server did not confirm"
        server = f"round trip {1000 * (time.perf_counter() - t0):.0f} ms via {embedded.url}"

        app = QApplication.instance()
        assert isinstance(app, QApplication)  # run_self_test made it
        bridge = ClientBridge(client)
        profile = Profile("selftest", None, "selftest", tmp / "data", tmp / "config")
        profile.config_dir.mkdir(parents=True, exist_ok=True)
        manager = WindowManager(app, client, bridge, PreferenceStore({}), profile, lambda: None)
        window = manager.open_main_window(conv.id)
        await asyncio.sleep(0.05)
        image = window.grab().toImage()
        colors = {
            image.pixel(x, y)
            for x in range(0, image.width(), 7)
            for y in range(0, image.height(), 7)
        }
        window.close()
        tray = Tray(manager, manager.prefs)  # its icon and the app badge, as at launch
        tray_ok = tray.icon is None or not tray.icon.icon().isNull()
        tray.close()
        bridge.close()
        assert image.width() > 100 and len(colors) > 3, "the window painted nothing"
        assert tray_ok, "the tray icon has no image"
        platform = QApplication.platformName()
        painted = f"main window painted {image.width()}x{image.height()} on {platform}"
        return server, painted + (", tray icon set" if tray.icon is not None else "")
    finally:
        if client is not None:
            await client.close()
        await asyncio.to_thread(embedded.stop)


async def _run_all(report_path: str | None = None) -> int:
    results: list[tuple[str, bool, str]] = []
    with tempfile.TemporaryDirectory(prefix="concord-st-") as d:
        tmp = Path(d)

        async def run(name: str, fn: Callable[[], Awaitable[Any]]) -> Any:
            try:
                value = await asyncio.wait_for(fn(), 30)
            except Exception as exc:
                detail = f"{type(exc).__name__}: {exc}".strip()
                results.append((name, False, detail or traceback.format_exc(limit=1)))
                return None
            return value

        for name, fn in (
            ("Qt binding", check_qt),
            ("app identity", check_identity),
            ("keyring", check_keyring),
        ):
            value = await run(name, fn)
            if value is not None:
                results.append((name, True, value))
        value = await run("local bus", check_bus)
        if value is not None:
            results.append(("local bus", True, value))
        pair = await run("embedded server", lambda: check_server_and_window(tmp))
        if pair is not None:
            results.append(("embedded server", True, pair[0]))
            results.append(("window renders", True, pair[1]))
        elif not any(r[0] == "window renders" for r in results):
            results.append(("window renders", False, "not reached"))
    failed = [r for r in results if not r[1]]
    lines = [
        "Concord self-test",
        *(f"  [{'PASS' if ok else 'FAIL'}] {name}: {detail}" for name, ok, detail in results),
        "all checks passed" if not failed else f"{len(failed)} check(s) failed",
    ]
    report = "\n".join(lines) + "\n"
    if sys.stdout is not None:  # None in a windowed Windows build
        sys.stdout.write(report)
        sys.stdout.flush()
    if report_path:
        _write_report(report_path, report)
    return 0 if not failed else 1


def run_self_test(report_path: str | None = None) -> int:
    """Run every check; print the report (and write it to ``report_path``); 0 if all passed."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from .identity import apply_identity
    from .loop import run_qt

    app = QApplication.instance() or QApplication(sys.argv[:1])
    apply_identity(app)
    QApplication.setQuitOnLastWindowClosed(False)
    return run_qt(lambda: _run_all(report_path))
