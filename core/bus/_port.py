"""The seams between ``LocalBus`` and the machinery that connects it to the other processes.

``Session`` (election + outbox), ``Hub`` (leading), ``Link`` (following) and ``StateBroker``
(state handshake) receive a :class:`BusPort`, not a ``LocalBus``: it names everything they may
ask of the bus, so none of them reaches into its private members. ``LocalBus`` satisfies it.
The hub asks its session to stop or restart leading through :class:`Leadership`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from . import _frames as F
from ._position import Position

__all__ = ["BusPort", "Leadership"]


class BusPort(Protocol):
    """What the bus machinery needs from its ``LocalBus``."""

    member_id: str

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    @property
    def closed(self) -> bool: ...

    @property
    def position(self) -> Position:
        """The delivery position (its only writer)."""
        ...

    # --- deliveries (the hub's total order reaching this process) ------------------------------

    def receive(self, src: str, mid: int, name: str, raw: Any, seq: int, t: int) -> None:
        """A message from another process, already sequenced by the hub."""
        ...

    def message_error(self, name: str, seq: int | None, src: str | None, error: str) -> None:
        """Fire ``messageerror`` on this process's channels named ``name``."""
        ...

    def report_gap(self, seq: int) -> None:
        """This member may have missed messages before ``seq``: emit ``gap`` (once per tick)."""
        ...

    def after_deliveries(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` after every delivery queued so far in this process."""
        ...

    # --- membership and leadership bookkeeping -------------------------------------------------

    @property
    def member_info(self) -> list[F.Member]:
        """The members the hub announced (leader first), with their state providers."""
        ...

    @property
    def known_leader(self) -> str | None:
        """The leader the hub announced; None while there is none."""
        ...

    def set_members(self, leader: str, members: list[F.Member]) -> None: ...

    def lost_leadership(self) -> None: ...

    def link_lost(self) -> None: ...

    def degrade(self, reason: str) -> None:
        """Give up on other processes: in-process delivery only from now on."""
        ...

    def notify_changed(self) -> None:
        """Wake ``wait_for`` callers: something they may be waiting for changed."""
        ...

    async def wait_for(self, pred: Callable[[], bool], seconds: float) -> None: ...

    # --- state handshake -----------------------------------------------------------------------

    def provider_names(self) -> list[str]:
        """The state names this member provides (sent in ``hello`` and the member list)."""
        ...

    def on_control(self, f: F.RoutedRequest | F.RoutedReply) -> None:
        """A state request or reply routed to this member."""
        ...

    def send_control(self, f: F.ControlToHub) -> bool:
        """Send a control frame to the hub; False when there is no hub to send it to."""
        ...

    @property
    def connecting(self) -> bool:
        """Cross-process, but neither leading nor connected to a hub yet."""
        ...


class Leadership(Protocol):
    """What a hub asks of the session that runs it."""

    def stop_leading(self, *, holdoff: bool) -> None:
        """Close the hub and let the election run again (held off for a while if asked)."""
        ...

    def restart_leadership(self, floor: int) -> None:
        """A member knows epoch ``floor``: lead again above it."""
        ...
