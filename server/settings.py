"""Server settings: one frozen dataclass, filled by the CLI or by tests."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from core import protocol as p


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("concord-server", appauthor=False))


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=default_data_dir)
    access_ttl_s: float = 15 * 60
    refresh_ttl_s: float = 30 * 86400
    refresh_grace_s: float = 30.0  # a spent refresh token answers the same successor (≤ 30 s)
    token_recheck_s: float = 10.0  # how long a checked access token is trusted without a read
    heartbeat_s: float = p.HEARTBEAT_S
    retry_ms: int = p.DEFAULT_RETRY_MS
    reauth_lead_s: float = 60.0
    retention: int = 10_000
    stream_queue_size: int = 1000
    max_streams_per_user: int = 16
    send_timeout_s: float = 30.0
    durable: bool = True  # fsync every commit (SQLite synchronous=FULL)
    stream_ticket_ttl_s: float = 300.0  # ``?ticket=`` credentials for browsers' EventSource
    cors_origins: tuple[str, ...] = ()  # origins allowed to call the API from a page (CORS)
    login_failures_per_minute: int = 10  # password checks per name (successes are refunded)
    login_attempts_per_address: int = 30  # password checks per client address per minute
    throttle_max_keys: int = 100_000  # names and addresses tracked by the sign-in throttle
    trusted_proxies: tuple[str, ...] = ()  # whose X-Forwarded-For names the client
    metrics_token: str | None = None  # bearer token for /metrics; None: loopback peers only
    database_url: str = ""  # postgresql://... (concord[scale]); "": SQLite in data_dir
    redis_url: str | None = None  # redis://...: pokes and shared limits between instances
    redis_prefix: str = "concord:"  # of every Redis key and channel (deployments sharing one)

    @property
    def database_path(self) -> Path:
        return self.data_dir / "concord.db"

    @property
    def database(self) -> str | Path:
        """The store: the PostgreSQL URL if one is set, else the SQLite file."""
        return self.database_url or self.database_path

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(os.fspath(self.data_dir)))
