"""What a :class:`core.client.Client` is opened with, and the errors it reports."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import protocol as p
from .engine import EngineConfig


@dataclass
class ClientConfig:
    server_url: str
    data_dir: str | Path
    username: str
    password: str | None = None
    runtime_dir: str | Path | None = None
    transport: Any = None  # an httpx transport, for tests
    engine: EngineConfig = field(default_factory=EngineConfig)
    heartbeat_s: float = p.HEARTBEAT_S
    request_timeout_s: float = 15.0
    apply_log: bool = False
    # Messages the cache keeps (every page loaded, for search and scrolling back offline);
    # past it the least recently updated conversations' oldest messages go first.
    cache_messages: int = 200_000
    sync: bool = field(default_factory=lambda: os.environ.get("CONCORD_SYNC", "on") != "off")
    # A stable identity when the URL is not one (the embedded server's port changes).
    profile: str | None = None
    # Seeds this session's refresh token (the embedded server mints one); never persisted here.
    refresh_token: str | None = None
    # Mints a fresh refresh token on demand (the embedded server's database); then no keyring,
    # no password, and a refused token is never "Sign-in required". Set by the app, not core.
    refresh_token_source: Callable[[], Awaitable[str]] | None = None

    @property
    def profile_key(self) -> str:
        ident = self.profile or f"{self.server_url.rstrip('/').lower()}\0{self.username}"
        return hashlib.sha256(f"{ident}\0{self.username}".encode()).hexdigest()[:20]
