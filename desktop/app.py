"""``concord``: the desktop app. qasync drives asyncio on Qt's event loop; windows are built in
the async main; quitting closes the client (and its HTTP client) and never hangs."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from typing import Any

from server import __version__

log = logging.getLogger(__name__)
SETTING_KEYS = ("theme", "notifications", "remote_toasts")
DEFAULT_SETTINGS = {"theme": "system", "notifications": True, "remote_toasts": False}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="concord", description="Concord desktop messenger.")
    ap.add_argument("--server", help="a remote sync server URL (default: the embedded server)")
    ap.add_argument("--profile", default=None, help="profile name (default: 'default')")
    ap.add_argument("--user", default=None, help="account name on a remote server")
    ap.add_argument(
        "--demo",
        action="store_true",
        help="add a few simulated people who chat with you (on the embedded server)",
    )
    ap.add_argument(
        "--separate-process",
        action="store_true",
        help="run a full process of its own on the profile's bus",
    )
    ap.add_argument(
        "--new-window",
        action="store_true",
        help="open a new window in the running process (the default for a 2nd launch)",
    )
    ap.add_argument("--self-test", action="store_true", help="check the installation and exit")
    ap.add_argument(
        "--report",
        metavar="FILE",
        help="with --self-test: also write the report to FILE (a windowed build has no console)",
    )
    ap.add_argument("--version", action="version", version=f"concord {__version__}")
    ap.add_argument(
        "--data-dir", default=os.environ.get("CONCORD_DATA_DIR"), help=argparse.SUPPRESS
    )
    ap.add_argument(
        "--config-dir", default=os.environ.get("CONCORD_CONFIG_DIR"), help=argparse.SUPPRESS
    )
    ap.add_argument(
        "--runtime-dir", default=os.environ.get("CONCORD_RUNTIME_DIR"), help=argparse.SUPPRESS
    )
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("CONCORD_LOG", "WARNING").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.self_test:
        from .selftest import run_self_test

        return run_self_test(args.report)
    from PySide6.QtWidgets import QApplication

    from .identity import apply_identity
    from .startup import from_environment

    args.launch = from_environment()  # before Qt takes it: forwarded if another process opens

    app = QApplication.instance() or QApplication(sys.argv[:1])
    apply_identity(app)  # app id, name, version and icon: before any window or the tray shows
    app.setOrganizationName("Concord")
    QApplication.setQuitOnLastWindowClosed(False)  # the async main decides, after cleaning up
    from .loop import run_qt

    code = int(run_qt(lambda: amain(app, args)) or 0)
    if getattr(args, "start_over", False):
        start_over()
    return code


def start_over() -> None:
    """After File → Sign out: run again as this process was started, so the app comes back as
    after a first start — the sign-in dialog for the same server (docs/architecture.md §2.6).
    The old process has left both buses and closed its cache by now."""
    log.info("signed out: starting over")
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv])


def watch_network(client: Any) -> Any:
    """Reconnect at once when the OS reports a network change (Qt's network-information
    backend: glib, NetworkManager, ...) instead of waiting for a dead socket to time out.
    Returns the ``QNetworkInformation``, or None where no backend loads."""
    from PySide6.QtNetwork import QNetworkInformation

    if not QNetworkInformation.loadDefaultBackend():
        log.info("no network-information backend: network changes are noticed by timeouts")
        return None
    info = QNetworkInformation.instance()
    info.reachabilityChanged.connect(lambda _reachability: client.network_changed())
    return info


async def amain(app: Any, args: argparse.Namespace) -> int:
    from pathlib import Path

    from . import logging_setup

    logging_setup.setup(logging_setup.log_dir(args.data_dir))  # the log file and crash hooks
    logging_setup.route_qt_messages()

    from core import Client, ClientConfig
    from core.bus import PreferenceStore, sync_state
    from core.engine import EngineConfig
    from ui.bridge import ClientBridge
    from ui.theme import apply_theme

    from . import testhook
    from .embedded import EmbeddedHost, token_source
    from .instance import AppInstance
    from .manager import WindowManager
    from .profile import Profile, read_json, write_json
    from .shell import Shell

    profile = Profile.resolve(
        args.profile,
        args.server,
        args.user,
        Path(args.data_dir) if args.data_dir else None,
        Path(args.config_dir) if args.config_dir else None,
    )
    runtime = Path(args.runtime_dir) if args.runtime_dir else None
    instance = await AppInstance.open(profile.key, runtime)
    if not instance.primary and not args.separate_process:
        ok = await instance.ask_primary_to_open_window(startup=getattr(args, "launch", None))
        await instance.close()
        print(
            "Asked the running Concord to open a window."
            if ok
            else "The running Concord did not answer."
        )
        return 0 if ok else 1

    embedded: EmbeddedHost | None = None
    server_url = profile.server_url
    too_new = _embedded_too_new(profile.data_dir / "server") if server_url is None else None
    if too_new is not None:
        await instance.close()
        return await _refuse(too_new)
    if server_url is None:
        # Served by whichever process leads the app bus: this one now, or another that tells
        # us where (and again whenever a new host takes over). No token is stored anywhere.
        state = profile.config_dir / "embedded.json"
        embedded = EmbeddedHost(instance, profile.data_dir / "server", state)
        await embedded.follow_leadership()
        server_url = await instance.wait_server_url(10.0) or _last_known_url(read_json(state))
    learned = instance.learned

    from core import CacheTooNew

    try:
        client = await Client.open(
            ClientConfig(
                server_url=server_url,
                data_dir=profile.data_dir / "cache",
                username=profile.username,
                runtime_dir=runtime,
                profile=profile.key,
                # The embedded account: tokens minted on demand, never a password; while its host
                # changes the status says "Local server restarting", not "Offline".
                refresh_token_source=(
                    token_source(profile.data_dir / "server", profile.username)
                    if embedded is not None
                    else None
                ),
                engine=EngineConfig(local_server=embedded is not None),
            )
        )
    except CacheTooNew as exc:  # written by a newer Concord, with unsent actions: keep it
        if embedded is not None:
            await embedded.close()
        await instance.close()
        return await _refuse(str(exc))
    demo = None

    def server_moved(url: str) -> None:
        client.set_server_url(url)
        if demo is not None:
            demo.set_server_url(url)

    instance.on_server_url = server_moved
    if instance.server_url and instance.learned != learned:
        server_moved(instance.server_url)  # a new host announced itself while we opened
    log_status(client)
    from .diagnostics import add_fact

    add_fact("App bus", lambda: "primary" if instance.primary else "secondary")
    testhook.install(client)
    bridge = ClientBridge(client)
    network = watch_network(client)
    saved = read_json(profile.config_dir / "settings.json")
    prefs = PreferenceStore(
        {**DEFAULT_SETTINGS, **{k: saved[k] for k in SETTING_KEYS if k in saved}}
    )
    settings_sync = sync_state(prefs, "settings", bus=client.sync_bus, sync_keys=SETTING_KEYS)

    def on_prefs(changed: dict[str, Any], _origin: str) -> None:
        write_json(profile.config_dir / "settings.json", prefs.snapshot())
        if "theme" in changed:
            apply_theme(app, prefs.get("theme"))
            log.info("theme applied: %s", prefs.get("theme"))

    prefs.subscribe(on_prefs)
    apply_theme(app, prefs.get("theme"))

    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: loop.call_soon_threadsafe(done.set))
    # Python runs signal handlers only between bytecodes: tick so they run while Qt idles.
    from PySide6.QtCore import QTimer

    ticker = QTimer()
    ticker.start(200)
    ticker.timeout.connect(lambda: None)
    manager = WindowManager(app, client, bridge, prefs, profile, on_quit=done.set)
    shell = Shell(manager, instance, prefs)  # tray, presence, notices (desktop/shell.py)
    await manager.sign_in()  # a remote server with no stored sign-in asks for the password
    await shell.open_windows()  # the saved layout, or a separate process's one new window
    if args.demo and embedded is not None and embedded.server is not None:
        from .demo import DemoDevice

        demo = await DemoDevice.start(embedded.server, profile, client)

    log.info("ready")
    await done.wait()
    ticker.stop()
    manager.close_all()
    if demo is not None:
        await demo.stop()
    shell.close()
    settings_sync.close()
    bridge.close()
    if network is not None:
        network.reachabilityChanged.disconnect()
    if embedded is not None:
        await embedded.close()  # stop serving before leaving the bus: the next host reuses the port
    await instance.close()  # the next leader of the app bus serves the embedded server again
    await client.close()
    args.start_over = manager.signed_out  # File → Sign out: main() starts over
    return 0


def _embedded_too_new(data_dir: Any) -> str | None:
    """Why the embedded server's database cannot be opened by this version (None: it can)."""
    import sqlite3

    from server.storage import DB_VERSION, schema_version

    path = data_dir / "concord.db"
    if not path.exists():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            found = schema_version(conn)
    except sqlite3.Error:
        return None  # the server reports it when it opens
    if found <= DB_VERSION:
        return None
    return (
        f"Your messages were saved by a newer version of Concord (database schema {found}; "
        f"this version knows {DB_VERSION}). Open them with that version or a later one."
    )


async def _refuse(message: str) -> int:
    """Say why Concord cannot start (a window, and stderr) and exit 1."""
    from PySide6.QtWidgets import QMessageBox

    from ui.dialogs import run_dialog

    print(f"concord: {message}", file=sys.stderr)
    box = QMessageBox(QMessageBox.Icon.Critical, "Concord cannot start", message)
    await run_dialog(box)
    return 1


def _last_known_url(state: dict[str, Any]) -> str:
    """Nobody answered: the last host's port (the client follows the next announcement)."""
    port = state.get("port")
    return f"http://127.0.0.1:{port if isinstance(port, int) and port > 0 else 9}"


def log_status(client: Any) -> None:
    """Log each change of the sync status (state, detail, role) at INFO, with the sync bus's
    epoch: what every window shows, readable from outside (tests/desktop/test_failover.py)."""
    last: list[tuple[str, str, str]] = []

    def changed(status: Any) -> None:
        key = (status.state, status.detail, status.role)
        if not last or last[0] != key:
            last[:] = [key]
            epoch = client.sync_bus.epoch  # log_status is called on an open client
            log.info("status: %s (%s) as %s [sync epoch %d]", *key, epoch)

    client.events.status_changed.connect(changed)
    changed(client.status)
