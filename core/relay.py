"""The client's side of the local bus: who leads, and what processes of a profile tell each other.

Messages on the ``concord.sync`` channel (JSON; never a token or a password):

* ``applied``  — leader: rows that changed in the shared cache (ids and message seqs only);
* ``outbox``   — anyone: the outbox table changed (re-read it; the leader sends);
* ``status``   — leader: the sync status, shown by followers with role "follower";
* ``visible``  — anyone: whether a window of that process is visible (the leader polls only then);
* ``hello``    — a newcomer: the leader answers with its status;
* ``conflict``/``error`` — leader: an action of that origin process lost or was refused;
* ``older``/``older_loaded`` — a follower asks the leader to fetch an older page of messages.
* ``draft``    — anyone: a conversation's draft changed in the shared cache (re-read it).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from typing import TYPE_CHECKING, Any

import msgspec

from . import protocol as p
from ._aio import wait_event
from .bus import BroadcastChannel, LocalBus, MessageEvent
from .engine import SyncStatus
from .outbox import Conflict

if TYPE_CHECKING:
    from .client import Client, ClientConfig, ErrorInfo
    from .store import Applied

log = logging.getLogger(__name__)
CHANNEL = "concord.sync"


def bus_scope(config: ClientConfig) -> str:
    """One bus per profile *and* cache: two "devices" on one machine never share a leader."""
    data = os.path.abspath(config.data_dir)
    return hashlib.sha256(f"{config.profile_key}\0{data}".encode()).hexdigest()[:24]


class Relay:
    def __init__(self, client: Client, bus: LocalBus) -> None:
        self.client = client
        self.bus = bus
        self.channel = BroadcastChannel(CHANNEL, bus=bus)
        self.channel.add_listener("message", self._on_message)
        self._off_leader = bus.add_listener("leader_changed", self._on_leader_changed)
        self._off_gap = bus.add_listener("gap", lambda _epoch, _seq: client._resync())
        self._visible: dict[str, bool] = {}
        self._older_waiters: dict[str, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    async def open(cls, client: Client, config: ClientConfig) -> Relay:
        bus = await LocalBus.open(scope=bus_scope(config), runtime_dir=config.runtime_dir)
        relay = cls(client, bus)
        # Listening now: whatever the leader applied before this point is in the shared cache.
        client._resync()
        if bus.is_leader:
            await client._start_leading()
        else:
            client._set_status(SyncStatus("connecting", "Waiting for the leader", "follower"))
            relay._post({"t": "hello"})
        relay.post_visible(client.visible)
        return relay

    @property
    def leading(self) -> bool:
        return self.bus.is_leader

    @property
    def member_id(self) -> str:
        return str(self.bus.member_id)

    async def close(self) -> None:
        self._off_leader()
        self._off_gap()
        self.channel.close()
        for task in list(self._tasks):
            task.cancel()
        await self.bus.close()

    def spawn(self, coro: Any) -> None:
        """Run ``coro`` as a task that :meth:`close` cancels."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _post(self, message: dict[str, Any]) -> None:
        try:
            self.channel.post_message(message)
        except Exception:  # closed channel during shutdown
            log.debug("bus post dropped", exc_info=True)

    # --- leadership -----------------------------------------------------------------------------

    def _on_leader_changed(self, epoch: int, leader_id: Any) -> None:
        self.client._resync()
        if self.bus.is_leader:
            self.spawn(self.client._start_leading())
        elif self.client.engine is not None:
            self.spawn(self.client._stop_leading())

    def any_visible(self) -> bool:
        members = {str(m) for m in self.bus.members()}
        others = any(v for m, v in self._visible.items() if m in members)
        return self.client.visible or others

    # --- posting ---------------------------------------------------------------------------------

    def post_applied(self, done: Applied) -> None:
        self._post(
            {
                "t": "applied",
                "upserted": sorted(done.upserted),
                "removed": sorted(done.removed),
                "messages": {cid: [m.seq for m in ms] for cid, ms in done.messages.items()},
            }
        )

    def post_outbox(self) -> None:
        self._post({"t": "outbox"})

    def post_status(self, status: SyncStatus) -> None:
        self._post({"t": "status", "status": msgspec.to_builtins(status)})

    def post_visible(self, visible: bool) -> None:
        self._post({"t": "visible", "member": self.member_id, "visible": visible})

    def post_conflict(self, conflict: Conflict) -> None:
        theirs = msgspec.to_builtins(conflict.theirs) if conflict.theirs else None
        self._post(
            {
                "t": "conflict",
                "cid": conflict.conversation_id,
                "mine": conflict.mine,
                "theirs": theirs,
                "entry": conflict.entry_id,
                "entries": list(conflict.entry_ids),
            }
        )

    def post_error(self, info: ErrorInfo) -> None:
        self._post(
            {"t": "error", "kind": info.kind, "message": info.message, "cid": info.conversation_id}
        )

    def post_older(self, conversation_id: str) -> None:
        self._post({"t": "older_loaded", "cid": conversation_id})

    # --- drafts ---

    def post_draft(self, conversation_id: str, restored: str | None = None) -> None:
        """A draft changed in the shared cache (re-read it there); ``restored``: the text of a
        refused send that was appended to it."""
        msg: dict[str, Any] = {"t": "draft", "cid": conversation_id}
        if restored is not None:
            msg["restored"] = restored
        self._post(msg)

    async def request_older(self, conversation_id: str, before: int | None, limit: int) -> None:
        event = self._older_waiters.setdefault(conversation_id, asyncio.Event())
        self._post({"t": "older", "cid": conversation_id, "before": before, "limit": limit})
        try:
            await wait_event(event, 15)
        finally:
            self._older_waiters.pop(conversation_id, None)

    # --- receiving -------------------------------------------------------------------------------

    def _on_message(self, event: MessageEvent) -> None:
        msg = event.data
        if not isinstance(msg, dict):
            return
        self.client._trace("bus", f"{msg.get('t')} from {event.sender} (seq {event.seq})")
        try:
            self._handle(msg)
        except (KeyError, TypeError, ValueError, msgspec.ValidationError) as exc:
            log.warning("bad bus message ignored: %s", exc)

    def _handle(self, msg: dict[str, Any]) -> None:
        client, kind = self.client, msg.get("t")
        if kind == "applied":
            messages = {str(c): [int(s) for s in seqs] for c, seqs in msg["messages"].items()}
            client._rows_changed(set(msg["upserted"]), set(msg["removed"]), messages)
        elif kind == "outbox":
            client._outbox_changed(local=False)
        elif kind == "status" and not self.leading:
            client._set_status(msgspec.convert(msg["status"], SyncStatus))
        elif kind == "visible":
            self._visible[str(msg["member"])] = bool(msg["visible"])
            if client.engine is not None:
                client.engine.set_visible(self.any_visible())
        elif kind == "hello" and self.leading:
            self.post_status(client.status)
        elif kind == "conflict" and self._mine(msg):
            theirs = msgspec.convert(msg["theirs"], p.Conversation) if msg["theirs"] else None
            ids = tuple(int(i) for i in msg.get("entries", []))
            client._emit("conflict", Conflict(msg["cid"], msg["mine"], theirs, msg["entry"], ids))
        elif kind == "error" and self._mine(msg):
            from .client import ErrorInfo

            client._emit_error(ErrorInfo(msg["kind"], msg["message"], msg.get("cid")))
        elif kind == "older" and self.leading:
            self.spawn(self._load_for_follower(msg["cid"]))
        elif kind == "older_loaded":
            waiter = self._older_waiters.get(msg["cid"])
            if waiter is not None:
                waiter.set()
        elif kind == "draft":  # --- drafts ---
            client._draft_changed_elsewhere(str(msg["cid"]))
            if isinstance(msg.get("restored"), str):
                client._emit("draft_restored", str(msg["cid"]), msg["restored"])

    def _mine(self, msg: dict[str, Any]) -> bool:
        return self.asks_here(msg["mine"]) if isinstance(msg.get("mine"), dict) else True

    def asks_here(self, mine: dict[str, Any]) -> bool:
        """Whether this process shows a conflict about ``mine``: asked once per device, in the
        process the action came from or, when that one is gone (a crash, a restart), the leader."""
        origin = mine.get("_origin")
        if origin is None or origin == self.member_id:
            return True
        return self.leading and origin not in {str(m) for m in self.bus.members()}

    async def _load_for_follower(self, conversation_id: str) -> None:
        try:
            await self.client.load_older(conversation_id)
        except Exception as exc:
            log.info("older page for a follower failed: %s", exc)
            self.post_older(conversation_id)
