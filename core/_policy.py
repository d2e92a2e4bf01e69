"""The engine's vocabulary: what it reports (:class:`SyncStatus`), how it is tuned
(:class:`EngineConfig`) and its one reconnect policy (:func:`reconnect_delay`)."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SyncStatus:
    # live | connecting | reconnecting | unreachable | polling | offline | sign_in_required
    state: str = "connecting"
    detail: str = "Connecting"
    role: str = "leader"
    next_retry_s: float | None = None
    cursor: str | None = None
    last_event_at: float | None = None  # time.time() of the last event from the server
    last_error: str | None = None  # why the last attempt to reach the server failed
    target: str = ""  # host:port of the server
    local_server: bool = False  # the embedded server of this profile


class SignInRequired(Exception):
    pass


@dataclass
class EngineConfig:
    """Timings. One reconnect policy for the stream and the outbox: full jitter up to the cap,
    never below the server's ``retry``; any success resets it."""

    backoff_base_s: float = 0.5
    backoff_cap_s: float = 10.0
    outbox_backoff_base_s: float = 0.5
    poll_after_s: float = 3.0
    poll_min_s: float = 5.0
    poll_max_s: float = 60.0
    snapshot_messages: int = 50
    full_sync_after_hidden_s: float = 300.0
    wake_tick_s: float = 2.0  # how often to look for a suspend / stopped process
    wake_gap_s: float = 5.0  # a tick this much late means the machine slept: reconnect now
    local_server: bool = False  # the profile's embedded server: "restarting", not "offline"


def reconnect_delay(attempt: int, base: float, cap: float, server_retry_s: float = 0.0) -> float:
    """Full-jitter exponential backoff, never below the server's ``retry`` hint."""
    return max(server_retry_s, random.uniform(0, min(cap, base * 2**attempt)))
