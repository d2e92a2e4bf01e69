"""Help → Copy debug info: what a bug report needs (version, platform, Qt, keyring backend, bus
roles, sync state, where the log is), as plain text on the clipboard. Never a token or a
password: nothing secret is read, and the text is scrubbed of anything shaped like a token
before it leaves (defence in depth)."""

from __future__ import annotations

import asyncio
import os
import platform
import re
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import qVersion
from PySide6.QtGui import QGuiApplication

from server import __version__

from . import logging_setup

# Process-wide facts another part of the app knows (the app bus's role, say): name -> provider.
_facts: dict[str, Callable[[], object]] = {}
# The server's tokens are 43 URL-safe characters (secrets.token_urlsafe(32)); anything this
# long and token-shaped is replaced, whatever it is.
TOKEN_SHAPED = re.compile(r"[A-Za-z0-9_\-]{40,}")
REDACTED = "[redacted]"


def add_fact(name: str, provider: Callable[[], object]) -> None:
    """Report ``provider()`` under ``name`` in every copy of the debug info of this process."""
    _facts[name] = provider


def keyring_backend() -> str:
    """The keyring backend's class and whether it may keep a sign-in (slow: run in a thread)."""
    try:
        import keyring

        from core.credentials import backend_problem

        backend = keyring.get_keyring()
        name = f"{type(backend).__module__}.{type(backend).__qualname__}"
        return name if backend_problem() is None else f"{name} (not secure: not used)"
    except Exception as exc:  # an unusable backend is exactly what this is for
        return f"unavailable ({type(exc).__name__})"


def _server(url: str | None) -> str:
    if not url:
        return "the embedded server"
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host  # never user:password@
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def debug_info(client: Any, profile: Any, keyring: str) -> str:
    """The report, one ``name: value`` per line (see the module's docstring)."""
    status = client.status
    files = logging_setup.current()
    session = os.environ.get("XDG_SESSION_TYPE") or (
        "wayland" if "WAYLAND_DISPLAY" in os.environ else ""
    )
    lines = [
        ("Concord", __version__),
        ("Platform", f"{platform.platform()} {platform.machine()}"),
        ("Python", f"{platform.python_version()} ({sys.executable})"),
        (
            "Qt",
            f"{qVersion()} (PySide6 {pyside_version}), platform {QGuiApplication.platformName()}"
            + (f", {session} session" if session else ""),
        ),
        ("Keyring", keyring if profile.server_url else f"{keyring}; not used (embedded server)"),
        ("Profile", f"{profile.name} on {_server(profile.server_url)}"),
        ("Sync", f"{status.state} ({status.detail})"),
        ("Sync bus", f"{status.role}, epoch {client.sync_bus.epoch}"),
        (
            "Server",
            f"{status.target or '?'}" + (" (this profile's own)" if status.local_server else ""),
        ),
        ("Cursor", status.cursor or client.cursor_id() or "none yet"),
        ("Last error", status.last_error or "none"),
        ("Unsent actions", str(sum(e.state in ("queued", "sent") for e in client.outbox()))),
        ("Conversations", str(len(client.conversations()))),
        *((name, _fact(provider)) for name, provider in _facts.items()),
        ("Log", str(files.log) if files.log else "console only"),
        ("Crash log", str(files.crash) if files.crash else "none"),
    ]
    text = "\n".join(f"{name}: {value}" for name, value in lines)
    return scrub(text, client)


def scrub(text: str, client: Any = None) -> str:
    """Remove the client's access token, and anything token-shaped, from ``text``."""
    credentials = getattr(client, "credentials", None)
    secret = getattr(credentials, "access_token", None)
    if secret:
        text = text.replace(secret, REDACTED)
    return TOKEN_SHAPED.sub(REDACTED, text)


def _fact(provider: Callable[[], object]) -> str:
    try:
        return str(provider())
    except Exception as exc:
        return f"? ({type(exc).__name__})"


async def copy_debug_info(client: Any, profile: Any) -> str:
    """Put the report on the clipboard; returns it."""
    keyring = await asyncio.to_thread(keyring_backend)
    text = debug_info(client, profile, keyring)
    QGuiApplication.clipboard().setText(text)
    return text
