"""``SyncLeadership``: who syncs for the profile, and what its processes tell each other
(docs/architecture.md §2.3, §5.1).

Every process of a profile joins one sync bus. Its leader runs the :class:`SyncEngine` and the
:class:`OutboxSender` and posts what it applied; the others re-read those rows from the shared
cache, and tell the leader when they wrote to the outbox (it sends) or changed a draft. The
messages are the typed structs of :mod:`core.sync_messages`. After a bus gap or a change of
leader every process re-reads its whole model from the cache: it may miss a post, never the cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any

import msgspec

from ._aio import wait_event
from ._config import ClientConfig
from ._drafts import Drafts
from ._search_relay import SearchRelay
from .bus import LocalBus, MessageEvent
from .credentials import Credentials
from .engine import SyncEngine, SyncStatus
from .events import ClientEvents
from .http import ServerApi
from .model import Conflict, ErrorInfo
from .outbox import OutboxSender, Rejected
from .read_model import ReadModel
from .store import Applied, LocalStore
from .sync_messages import (
    ConflictRaised,
    DraftChanged,
    ErrorRaised,
    Hello,
    OlderLoaded,
    OlderWanted,
    OutboxChanged,
    RowsApplied,
    SearchFound,
    SearchWanted,
    SigningOut,
    StatusReport,
    SyncChannel,
    SyncMessage,
    Visibility,
    decode,
)

__all__ = ["SyncLeadership", "bus_scope"]

log = logging.getLogger(__name__)

# How a refused action is named to the user (others: "<op> refused").
_REFUSED = {
    "edit_message": "Your edit was not saved (its text is back in the composer)",
    "delete_message": "The message was not deleted",
}


def bus_scope(config: ClientConfig) -> str:
    """One bus per profile *and* cache: two "devices" on one machine never share a leader."""
    data = os.path.abspath(config.data_dir)
    return hashlib.sha256(f"{config.profile_key}\0{data}".encode()).hexdigest()[:24]


class SyncLeadership:
    """This process's place on the profile's sync bus: the engine while it leads, the messages
    always. ``status`` is the sync status shown here (role "follower" in a follower)."""

    def __init__(
        self,
        config: ClientConfig,
        store: LocalStore,
        credentials: Credentials,
        bus: LocalBus,
        channel: SyncChannel,
        model: ReadModel,
        drafts: Drafts,
        events: ClientEvents,
    ) -> None:
        self.config = config
        self.store = store
        self.credentials = credentials
        self.bus = bus
        self.model = model
        self.drafts = drafts
        self.events = events
        self.status = SyncStatus(role="leader", cursor=store.cursor_id())
        self.engine: SyncEngine | None = None  # while leading (and sync is on)
        self.bad_messages = 0  # bus messages ignored because they could not be decoded
        self._api: ServerApi | None = None
        self._sender: OutboxSender | None = None
        self._channel = channel
        self._visible = True  # a window of this process is visible
        self._others_visible: dict[str, bool] = {}  # by member id
        self._older_waiters: dict[str, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Server search (core._search_relay): the leader's api, or a question to the leader.
        self.searches = SearchRelay(
            channel, lambda: self._api if self.engine is not None else None, self._spawn
        )
        self._moving = asyncio.Lock()  # one move to a new server URL at a time
        self._stopping = asyncio.Lock()  # one stop at a time (a halt and a close may overlap)
        self.halted = False  # signing out: never syncs again
        # Signing out from here (core.sign_out); ``superseded``: another process signs out at
        # the same moment and has the lower member id, so this one lets go instead.
        self.signing_out_here = False
        self.superseded = asyncio.Event()
        channel.listen(self._on_message)
        self._off_leader = bus.leader_changed.connect(self._on_leader_changed)
        self._off_gap = bus.gap.connect(lambda _epoch, _seq: self.resync())

    async def start(self) -> None:
        """Listening now: whatever the leader applied before this point is in the shared cache."""
        self.resync()
        if self.bus.is_leader:
            await self._start_leading()
        else:
            self._set_status(SyncStatus("connecting", "Waiting for the leader", "follower"))
            self._channel.post(Hello())
        self._channel.post(Visibility(member=self.member_id, visible=self._visible))

    async def close(self, before_leaving: Callable[[], object] | None = None) -> None:
        """Stop syncing and leave the bus; ``before_leaving`` runs between the two (the client
        closes its cache there: a process gone from the bus never has it open, §2.6)."""
        await self._stop_leading()
        self._off_leader()
        self._off_gap()
        self._channel.close()
        for task in list(self._tasks):
            task.cancel()
        if before_leaving is not None:
            before_leaving()
        await self.bus.close()

    async def halt(self) -> None:
        """Stop syncing for good (signing out): the engine and the sender stop, and this
        process does not start them again if it leads the bus later."""
        self.halted = True
        await self._stop_leading()
        self._set_status(SyncStatus("offline", "Signing out", self.status.role))

    @property
    def leading(self) -> bool:
        """Whether this process leads the sync bus (it runs the engine when sync is on)."""
        return self.bus.is_leader

    @property
    def member_id(self) -> str:
        """This process's id on the sync bus (the ``_origin`` of its outbox entries)."""
        return str(self.bus.member_id)

    def resync(self) -> None:
        """Re-read the whole model and every draft from the shared cache."""
        self.model.resync()
        self.drafts.resync()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a task that :meth:`close` cancels."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- leading ---------------------------------------------------------------------------------

    def _on_leader_changed(self, epoch: int, leader_id: str | None) -> None:
        self.resync()
        if self.bus.is_leader:
            self._spawn(self._start_leading())
        elif self.engine is not None:
            self._spawn(self._stop_leading())

    async def _start_leading(self) -> None:
        if self.engine is not None or self.halted:
            return
        if not self.config.sync:
            self._set_status(
                SyncStatus("offline", "Sync off", "leader", cursor=self.store.cursor_id())
            )
            return
        self._api = ServerApi(
            self.config.server_url,
            transport=self.config.transport,
            heartbeat_s=self.config.heartbeat_s,
        )
        self.engine = SyncEngine(
            self._api,
            self.store,
            self.credentials,
            username=self.config.username,
            on_applied=self._on_applied,
            on_status=self._set_status,
            on_error=lambda kind, msg: self.events.error.emit(ErrorInfo(kind, msg)),
            config=self.config.engine,
        )
        self.engine.on_trace = self.events.trace.emit
        self.engine.password = self.config.password
        self._sender = OutboxSender(
            self.engine,
            on_settled=self.outbox_changed,
            on_conflict=self._on_conflict,
            on_rejected=self._on_rejected,
        )
        engine, sender = self.engine, self._sender
        engine.set_visible(self.any_visible())
        if self.config.password:
            try:
                await engine.sign_in(self.config.password)
            except Exception as exc:  # network down: the engine retries with the refresh token
                log.info("sign-in at open failed: %s", exc)
            if self.engine is not engine or self.halted:
                return  # stopped meanwhile (a sign-out, leadership lost): start nothing
        engine.start()
        sender.start()
        if self.credentials.keyring_error:
            self.events.error.emit(ErrorInfo("keyring", self.credentials.keyring_error))

    async def _stop_leading(self) -> None:
        async with self._stopping:
            if self._sender is not None:
                await self._sender.stop()
            if self.engine is not None:
                await self.engine.stop()
            if self._api is not None:
                await self._api.aclose()
            self.engine = self._sender = self._api = None

    def lead_again(self) -> None:
        """Start the leader's sync over (the server moved to ``config.server_url``): its stream,
        its outbox, with a fresh token. A no-op in a follower."""
        if self.engine is not None:
            self._spawn(self._lead_again())

    async def _lead_again(self) -> None:
        async with self._moving:
            await self._stop_leading()
            if self.leading:
                await self._start_leading()

    async def sign_in(self, password: str) -> None:
        """Sign in with a password (the leader only; followers are signed in through it)."""
        if self.engine is None:
            raise RuntimeError("only the leader process signs in")
        await self.engine.sign_in(password)
        if self.credentials.keyring_error:
            self.events.error.emit(ErrorInfo("keyring", self.credentials.keyring_error))

    async def _let_go(self) -> None:
        """Another process signs out: stop syncing, then tell the app (it closes)."""
        await self.halt()
        self.events.signing_out.emit()

    def network_changed(self) -> None:
        """Reconnect now (a no-op in a follower: its leader's process sees the same network)."""
        if self.engine is not None:
            self.engine.reconnect_now()

    # --- what the leader's engine and sender report ----------------------------------------------

    def _set_status(self, status: SyncStatus) -> None:
        if not self.leading:
            status = replace(status, role="follower")
        if status != self.status:
            self.status = status
            self.events.status_changed.emit(status)
            if self.leading:
                self._channel.post(StatusReport(status=status))

    def _on_applied(self, done: Applied) -> None:
        """A batch was written to the cache."""
        settled = self.store.settle()
        messages = {cid: [m.seq for m in ms] for cid, ms in done.messages.items()}
        self.model.rows_changed(done.upserted, done.removed, messages, done.deleted)
        if settled:
            self.outbox_changed()
        self._channel.post(
            RowsApplied(
                upserted=sorted(done.upserted),
                removed=sorted(done.removed),
                messages=messages,
                deleted=done.deleted,
            )
        )

    def _on_conflict(self, conflict: Conflict) -> None:
        if self.asks_here(conflict.mine):
            self.events.ask(conflict)
        self._channel.post(
            ConflictRaised(
                cid=conflict.conversation_id,
                mine=conflict.mine,
                theirs=conflict.theirs,
                entry=conflict.entry_id,
                entries=list(conflict.entry_ids),
            )
        )

    def _on_rejected(self, rejected: Rejected) -> None:
        try:  # a refused send's text is kept
            self.drafts.restore_refused(rejected)
        except Exception:  # never let it stop the sender
            log.exception("could not put a refused message back into its draft")
        what = _REFUSED.get(rejected.op, f"{rejected.op} refused")
        info = ErrorInfo("rejected", f"{what}: {rejected.message}", rejected.conversation_id)
        self.events.error.emit(info)
        self._channel.post(
            ErrorRaised(kind=info.kind, message=info.message, cid=info.conversation_id)
        )

    def asks_here(self, mine: dict[str, Any]) -> bool:
        """Whether this process shows a conflict about ``mine``: asked once per device, in the
        process the action came from or, when that one is gone (a crash, a restart), the leader."""
        origin = mine.get("_origin")
        if origin is None or origin == self.member_id:
            return True
        return self.leading and origin not in {str(m) for m in self.bus.members()}

    # --- what any process tells the others -------------------------------------------------------

    def outbox_changed(self, *, local: bool = True) -> None:
        """The outbox table changed (``local``: written here, so the others are told); the
        leader sends what is new."""
        self.model.outbox_changed()
        if local:
            self._channel.post(OutboxChanged())
        if self._sender is not None:
            self._sender.poke()

    def set_visible(self, visible: bool) -> None:
        """Whether a window of this process is visible (the leader polls only while one is)."""
        self._visible = visible
        self._channel.post(Visibility(member=self.member_id, visible=visible))
        if self.engine is not None:
            self.engine.set_visible(self.any_visible())

    def any_visible(self) -> bool:
        members = {str(m) for m in self.bus.members()}
        others = any(v for m, v in self._others_visible.items() if m in members)
        return self._visible or others

    async def load_older(
        self, conversation_id: str, limit: int = 50, before: int | None = None
    ) -> int | None:
        """Fetch the page of messages before seq ``before`` (None: before the oldest cached one)
        into the cache — through the leader when following. Returns that seq (None: none
        cached; 1: nothing older)."""
        if before is None:
            before = self.store.oldest_seq(conversation_id)
        if before == 1:
            return before
        if self.engine is None or self._api is None:
            event = self._older_waiters.setdefault(conversation_id, asyncio.Event())
            self._channel.post(OlderWanted(cid=conversation_id, before=before, limit=limit))
            try:
                await wait_event(event, 15)
            finally:
                self._older_waiters.pop(conversation_id, None)
        else:
            page = await self._api.messages(conversation_id, before, limit)
            self.store.add_messages(page.messages)
            self._channel.post(OlderLoaded(cid=conversation_id))
        return before

    async def _load_for_follower(
        self, conversation_id: str, before: int | None, limit: int
    ) -> None:
        try:
            await self.load_older(conversation_id, limit, before)
        except Exception as exc:
            log.info("older page for a follower failed: %s", exc)
            self._channel.post(OlderLoaded(cid=conversation_id))

    # --- receiving -------------------------------------------------------------------------------

    def _on_message(self, event: MessageEvent) -> None:
        data = event.data
        if not isinstance(data, dict):
            return
        if self.events.trace.connected:
            self.events.trace.emit("bus", f"{data.get('t')} from {event.sender} (seq {event.seq})")
        try:
            self._handle(decode(data))
        except (KeyError, TypeError, ValueError, msgspec.ValidationError) as exc:
            self.bad_messages += 1
            log.warning("bad bus message ignored: %s", exc)

    def _handle(self, message: SyncMessage) -> None:
        match message:
            case RowsApplied(upserted=upserted, removed=removed, messages=messages):
                self.model.rows_changed(upserted, removed, messages, message.deleted)
            case OutboxChanged():
                self.outbox_changed(local=False)
            case StatusReport(status=status) if not self.leading:
                self._set_status(status)
            case Visibility(member=member, visible=visible):
                self._others_visible[member] = visible
                if self.engine is not None:
                    self.engine.set_visible(self.any_visible())
            case Hello() if self.leading:
                self._channel.post(StatusReport(status=self.status))
            case ConflictRaised() if self.asks_here(message.mine):
                conflict = Conflict(
                    message.cid, message.mine, message.theirs, message.entry, tuple(message.entries)
                )
                self.events.conflict.emit(conflict)
            case ErrorRaised(kind=kind, message=text, cid=cid):
                self.events.error.emit(ErrorInfo(kind, text, cid))
            case OlderWanted(cid=cid, before=before, limit=limit) if self.leading:
                self._spawn(self._load_for_follower(cid, before, limit))
            case SearchWanted() if self.leading:
                self.searches.asked(message)
            case SearchFound():
                self.searches.found(message)
            case OlderLoaded(cid=cid):
                waiter = self._older_waiters.get(cid)
                if waiter is not None:
                    waiter.set()
            case DraftChanged(cid=cid, restored=restored):
                self.drafts.changed_elsewhere(cid, restored)
            case SigningOut(by=by) if self.signing_out_here:
                if by < self.member_id:  # both sign out: the lower member id goes on
                    self.superseded.set()
            case SigningOut(by=by):
                log.info("process %s is signing out: this one lets go", by)
                self._spawn(self._let_go())
