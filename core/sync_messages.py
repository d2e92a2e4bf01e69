"""The messages the processes of a profile send each other on the ``concord.sync`` bus channel.

One ``msgspec.Struct`` per kind, a tagged union on ``t`` (like the bus's own frames,
``core/bus/_frames.py``), decoded strictly: a message that does not match its kind is a
``msgspec.ValidationError``, which the receiver logs and ignores. Never a token or a password:
ids, seqs, the sync status and conversation rows only (docs/architecture.md §5.1).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, get_args

import msgspec

from . import protocol as p
from ._policy import SyncStatus
from .bus import BroadcastChannel, LocalBus, MessageEvent

__all__ = [
    "CHANNEL",
    "ConflictRaised",
    "DraftChanged",
    "ErrorRaised",
    "Hello",
    "OlderLoaded",
    "OlderWanted",
    "OutboxChanged",
    "RowsApplied",
    "SearchFound",
    "SearchWanted",
    "SigningOut",
    "StatusReport",
    "SyncChannel",
    "SyncMessage",
    "Visibility",
    "decode",
    "encode",
]

log = logging.getLogger(__name__)
CHANNEL = "concord.sync"


class _Message(
    msgspec.Struct, tag_field="t", forbid_unknown_fields=True, omit_defaults=True, kw_only=True
):
    pass


class RowsApplied(_Message, tag="applied"):
    """Leader: rows that changed in the shared cache; receivers re-read them."""

    upserted: list[str]
    removed: list[str]
    messages: dict[str, list[int]]  # conversation id -> seqs of the messages added or edited
    deleted: dict[str, list[str]] = {}  # conversation id -> ids of the messages deleted


class OutboxChanged(_Message, tag="outbox"):
    """Anyone: the outbox table changed (re-read it; the leader sends)."""


class StatusReport(_Message, tag="status"):
    """Leader: its sync status, shown by followers with role "follower"."""

    status: SyncStatus


class Visibility(_Message, tag="visible"):
    """Anyone: whether a window of that process is visible (the leader polls only then)."""

    member: str
    visible: bool


class Hello(_Message, tag="hello"):
    """A newcomer: the leader answers with its status."""


class ConflictRaised(_Message, tag="conflict"):
    """Leader: a chain of changes made in process ``mine["_origin"]`` lost (a ``Conflict``)."""

    cid: str
    mine: dict[str, Any]
    theirs: p.Conversation | None
    entry: int
    entries: list[int] = []


class ErrorRaised(_Message, tag="error"):
    """Leader: an action was refused (core.model.ErrorInfo)."""

    kind: str
    message: str
    cid: str | None = None


class OlderWanted(_Message, tag="older"):
    """A follower asks the leader to fetch an older page of messages into the cache."""

    cid: str
    before: int | None
    limit: int


class OlderLoaded(_Message, tag="older_loaded"):
    """Leader: the older page asked for is in the cache (or could not be fetched)."""

    cid: str


class SearchWanted(_Message, tag="search"):
    """A follower asks the leader to search the server (only the leader holds tokens)."""

    rid: str  # the asker's request id
    q: str
    before: int | None
    limit: int


class SearchFound(_Message, tag="found"):
    """Leader: the server's answer to ``search`` ``rid`` (bodies cut to fit a bus frame), or
    the error that stopped it."""

    rid: str
    messages: list[p.Message] = []
    next_before: int | None = None
    error: str | None = None


class DraftChanged(_Message, tag="draft"):
    """Anyone: a conversation's draft changed in the shared cache (re-read it); ``restored``:
    the text of a refused send that was put back into it."""

    cid: str
    restored: str | None = None


class SigningOut(_Message, tag="sign_out"):
    """The process ``by`` is signing out of the server (docs/architecture.md §2.6): every other
    process stops syncing, closes its windows and its cache, and leaves the bus."""

    by: str


SyncMessage = (
    RowsApplied
    | OutboxChanged
    | StatusReport
    | Visibility
    | Hello
    | ConflictRaised
    | ErrorRaised
    | OlderWanted
    | OlderLoaded
    | SearchWanted
    | SearchFound
    | DraftChanged
    | SigningOut
)


def encode(message: SyncMessage) -> dict[str, Any]:
    """The JSON value posted on the channel."""
    data: dict[str, Any] = msgspec.to_builtins(message)
    return data


# By tag: converting to one struct type is ~15 times as fast as to the union (msgspec 0.23).
_KINDS: dict[object, type[SyncMessage]] = {
    kind.__struct_config__.tag: kind for kind in get_args(SyncMessage)
}


def decode(data: dict[str, Any]) -> SyncMessage:
    """A received message's data as its struct; raises ``msgspec.ValidationError`` when it is
    not one."""
    kind = _KINDS.get(data.get("t"))
    if kind is None:
        raise msgspec.ValidationError(f"unknown sync message kind {data.get('t')!r}")
    return msgspec.convert(data, kind)


class SyncChannel:
    """This process's end of the ``concord.sync`` channel: typed messages out, raw events in."""

    def __init__(self, bus: LocalBus) -> None:
        self._channel = BroadcastChannel(CHANNEL, bus=bus)

    def post(self, message: SyncMessage) -> None:
        """Post to every other process of the profile (dropped once the channel is closed)."""
        try:
            self._channel.post_message(encode(message))
        except Exception:  # closed channel during shutdown
            log.debug("bus post dropped", exc_info=True)

    def listen(self, callback: Callable[[MessageEvent], object]) -> None:
        """Call ``callback`` with each message another process (or channel) posted."""
        self._channel.add_listener("message", callback)

    def close(self) -> None:
        self._channel.close()
