"""``Client``: the one object the app uses (docs/architecture.md §2, §5).

Every process of a profile opens a ``Client`` on the same cache database and the same local bus.
The bus leader runs the :class:`SyncEngine` and the :class:`OutboxSender`; after each applied
batch it posts which rows changed, and every other process re-reads those rows from the shared
cache. A mutation anywhere is committed to the outbox first, shown at once as pending, and the
leader is poked over the bus to send it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import protocol as p
from ._config import ClientConfig, ErrorInfo
from ._drafts import DraftsMixin
from ._events import EVENTS
from .bus import LocalBus
from .credentials import Credentials
from .engine import SyncEngine, SyncStatus
from .http import ServerApi
from .model import (
    ConversationView,
    MessageView,
    OutboxEntry,
    conversation_view,
    group_by_target,
    message_view,
    pending_messages,
    sort_key,
)
from .outbox import Conflict, OutboxSender, Rejected
from .relay import Relay
from .store import Applied, LocalStore

# ClientConfig and ErrorInfo (core._config) are re-exported: they belong to the facade.
__all__ = ["EVENTS", "Client", "ClientConfig", "ErrorInfo"]

log = logging.getLogger(__name__)



class Client(DraftsMixin):
    def __init__(self, config: ClientConfig, store: LocalStore) -> None:
        self.config = config
        self.me = config.username
        self.store = store
        self._listeners: dict[str, list[Callable[..., None]]] = {name: [] for name in EVENTS}
        self._server: dict[str, p.Conversation] = {}
        self._pending: dict[str, list[OutboxEntry]] = {}
        self._views: dict[str, ConversationView] = {}
        self._changed = asyncio.Event()
        self._unasked: list[Conflict] = []
        self._moving = asyncio.Lock()  # one move to a new server URL at a time
        self.status = SyncStatus(role="leader", cursor=store.cursor_id())
        self.api: ServerApi | None = None
        self.engine: SyncEngine | None = None
        self.sender: OutboxSender | None = None
        self.relay: Relay | None = None
        self.credentials = Credentials(config.profile_key)
        if config.refresh_token:
            self.credentials.seed_refresh_token(config.refresh_token)
        if config.refresh_token_source is not None:
            self.credentials.set_source(config.refresh_token_source)
        self.visible = True

    # --- opening and closing ---------------------------------------------------------------------

    @classmethod
    async def open(cls, config: ClientConfig) -> Client:
        """Returns with the cached state at once; the network is used in the background."""
        path = Path(config.data_dir) / "profiles" / config.profile_key / "cache.db"
        client = cls(config, LocalStore(path, apply_log=config.apply_log))
        client._server = client.store.conversations()
        client._load_outbox()
        client._views = {}
        for cid in set(client._server) | set(client._pending):
            view = conversation_view(
                client._server.get(cid), client._pending.get(cid, []), client.me
            )
            if view is not None:
                client._views[cid] = view
        client.relay = await Relay.open(client, config)
        return client

    async def close(self) -> None:
        await self._stop_leading()
        if self.relay is not None:
            await self.relay.close()
        self.store.close()

    @property
    def sync_bus(self) -> LocalBus:
        """The profile's sync bus this client has joined (docs/architecture.md §2.3): its epoch,
        members and leader, and the bus for other state the profile's processes share (the
        app's settings)."""
        if self.relay is None:
            raise RuntimeError("the client is not open")
        return self.relay.bus

    def cursor_id(self) -> str | None:
        """The position in the server's change feed that the cache has applied (None before
        the first full sync)."""
        return self.store.cursor_id()

    def outbox(self) -> list[OutboxEntry]:
        """The durable outbox, oldest first: every action not yet settled, in any state
        (queued, sent, held, failed)."""
        return self.store.outbox()

    # --- leadership (called by the relay) --------------------------------------------------------

    async def _start_leading(self) -> None:
        if self.engine is not None:
            return
        if not self.config.sync:
            self._set_status(
                SyncStatus("offline", "Sync off", "leader", cursor=self.store.cursor_id())
            )
            return
        self.api = ServerApi(
            self.config.server_url,
            transport=self.config.transport,
            heartbeat_s=self.config.heartbeat_s,
        )
        self.engine = SyncEngine(
            self.api,
            self.store,
            self.credentials,
            username=self.me,
            on_applied=self._on_applied,
            on_status=self._set_status,
            on_error=lambda kind, msg: self._emit_error(ErrorInfo(kind, msg)),
            config=self.config.engine,
        )
        self.engine.on_trace = self._trace
        self.engine.password = self.config.password
        self.sender = OutboxSender(
            self.engine,
            on_settled=self._outbox_changed,
            on_conflict=self._on_conflict,
            on_rejected=self._on_rejected,
        )
        self.engine.set_visible(self.relay.any_visible() if self.relay else self.visible)
        if self.config.password:
            try:
                await self.engine.sign_in(self.config.password)
            except Exception as exc:  # network down: the engine retries with the refresh token
                log.info("sign-in at open failed: %s", exc)
        self.engine.start()
        self.sender.start()
        if self.credentials.keyring_error:
            self._emit_error(ErrorInfo("keyring", self.credentials.keyring_error))

    async def _stop_leading(self) -> None:
        if self.sender is not None:
            await self.sender.stop()
        if self.engine is not None:
            await self.engine.stop()
        if self.api is not None:
            await self.api.aclose()
        self.engine = self.sender = self.api = None

    async def sign_in(self, password: str) -> None:
        """Sign in with a password (the leader only; followers are signed in through it)."""
        if self.engine is None:
            raise RuntimeError("only the leader process signs in")
        await self.engine.sign_in(password)
        if self.credentials.keyring_error:
            self._emit_error(ErrorInfo("keyring", self.credentials.keyring_error))

    # --- events ----------------------------------------------------------------------------------

    def on(self, event: str, callback: Callable[..., None]) -> Callable[[], None]:
        if event not in self._listeners:
            raise ValueError(f"unknown event {event!r}; one of {', '.join(EVENTS)}")
        self._listeners[event].append(callback)
        if event == "conflict" and self._unasked:  # asked before anyone listened (at start)
            unasked, self._unasked = self._unasked, []
            for conflict in unasked:
                asyncio.get_running_loop().call_soon(callback, conflict)
        return lambda: (
            self._listeners[event].remove(callback) if callback in self._listeners[event] else None
        )

    def _emit(self, event: str, *args: Any) -> None:
        for cb in list(self._listeners[event]):
            try:
                cb(*args)
            except Exception:
                log.exception("%s listener failed", event)

    def _trace(self, source: str, text: str) -> None:
        if self._listeners["trace"]:
            self._emit("trace", source, text)

    def _emit_error(self, info: ErrorInfo) -> None:
        self._emit("error", info)

    def _set_status(self, status: SyncStatus) -> None:
        if self.relay is not None and not self.relay.leading:
            status = replace(status, role="follower")
        if status != self.status:
            self.status = status
            self._emit("status_changed", status)
            if self.relay is not None and self.relay.leading:
                self.relay.post_status(status)

    # --- model maintenance -----------------------------------------------------------------------

    def _load_outbox(self) -> set[str]:
        """Reload the outbox; returns the conversations whose pending actions changed."""
        old = self._pending
        self._pending = group_by_target(self.store.outbox())
        return {
            cid for cid in set(old) | set(self._pending) if old.get(cid) != self._pending.get(cid)
        }

    def _refresh(self, cids: set[str]) -> None:
        for cid in cids:
            view = conversation_view(self._server.get(cid), self._pending.get(cid, []), self.me)
            old = self._views.get(cid)
            if view is None:
                if self._views.pop(cid, None) is not None:
                    self._emit("conversation_removed", cid)
            elif view != old:
                self._views[cid] = view
                self._emit("conversation_changed", view)
        self._changed.set()
        self._changed = asyncio.Event()

    def _resync(self) -> None:
        """Re-read the whole model from the shared cache: after a bus gap or a failover, a
        process may have missed ``applied``/``outbox`` posts, but never the cache itself."""
        fresh = self.store.conversations()
        changed = {
            cid for cid in set(fresh) | set(self._server) if fresh.get(cid) != self._server.get(cid)
        }
        self._server = fresh
        changed |= self._load_outbox()
        self._refresh(changed)
        for cid in changed:
            if cid in self._views:
                self._emit("messages_added", cid, self.messages(cid))
        self._resync_drafts()  # --- drafts ---: missed ``draft`` posts too

    def _on_applied(self, done: Applied) -> None:
        """Leader: a batch was written to the cache."""
        settled = self.store.settle()
        self._rows_changed(
            done.upserted, done.removed, {c: [m.seq for m in ms] for c, ms in done.messages.items()}
        )
        if settled:
            self._outbox_changed()
        if self.relay is not None:
            self.relay.post_applied(done)

    def _rows_changed(
        self, upserted: set[str], removed: set[str], messages: dict[str, list[int]]
    ) -> None:
        for cid in upserted:
            conv = self.store.conversation(cid)
            if conv is None:
                self._server.pop(cid, None)
            else:
                self._server[cid] = conv
        for cid in removed:
            self._server.pop(cid, None)
        self._refresh(set(upserted) | set(removed))
        for cid, seqs in messages.items():
            if cid in self._views and seqs:
                lo = min(seqs)
                added = [message_view(m) for m in self.store.messages(cid) if m.seq >= lo]
                if added:
                    self._emit("messages_added", cid, added)

    def _outbox_changed(self, local: bool = True) -> None:
        changed = self._load_outbox()
        self._refresh(changed)
        for cid in changed:
            # Every pending send of the conversation, not only new ones: views replace a message
            # by id, so one that changed state since (failed) is shown as it is now.
            pending = pending_messages(self._pending.get(cid, []), self.me)
            if pending:
                self._emit("messages_added", cid, pending)
        if changed and self._listeners["outbox_changed"]:
            unsent = sum(e.state in ("queued", "sent") for es in self._pending.values() for e in es)
            self._emit("outbox_changed", unsent)
        if local and self.relay is not None:
            self.relay.post_outbox()
        if self.sender is not None:
            self.sender.poke()

    def _on_conflict(self, conflict: Conflict) -> None:
        if self.relay is None or self.relay.asks_here(conflict.mine):
            if self._listeners["conflict"]:
                self._emit("conflict", conflict)
            else:  # a held chain re-asked while opening: the first listener gets it
                self._unasked.append(conflict)
        if self.relay is not None:
            self.relay.post_conflict(conflict)

    def _on_rejected(self, rejected: Rejected) -> None:
        try:  # --- drafts ---: a refused send's text is kept
            self._restore_refused(rejected)
        except Exception:  # never let it stop the sender
            log.exception("could not put a refused message back into its draft")
        info = ErrorInfo(
            "rejected", f"{rejected.op} refused: {rejected.message}", rejected.conversation_id
        )
        self._emit_error(info)
        if self.relay is not None:
            self.relay.post_error(info)

    # --- reading ---------------------------------------------------------------------------------

    def conversations(self) -> list[ConversationView]:
        """Pinned first, then most recently updated; each with unread count and pending flag."""
        return sorted(self._views.values(), key=sort_key)

    def conversation(self, conversation_id: str) -> ConversationView | None:
        return self._views.get(conversation_id)

    def messages(self, conversation_id: str) -> list[MessageView]:
        server = [message_view(m) for m in self.store.messages(conversation_id)]
        ids = {m.id for m in server}
        pending = pending_messages(self._pending.get(conversation_id, []), self.me)
        return server + [m for m in pending if m.id not in ids]

    def unread(self, conversation_id: str) -> int:
        view = self._views.get(conversation_id)
        return view.unread if view else 0

    def total_unread(self) -> int:
        return sum(v.unread for v in self._views.values())

    async def load_older(self, conversation_id: str, limit: int = 50) -> list[MessageView]:
        have = self.store.messages(conversation_id, limit=1_000_000)
        before = have[0].seq if have else None
        if before == 1:
            return []
        if self.engine is None or self.api is None:
            if self.relay is None:
                return []
            await self.relay.request_older(conversation_id, before, limit)
        else:
            page = await self.engine.call(self.api.messages, conversation_id, before, limit)
            self.store.add_messages(page.messages)
            if self.relay is not None:
                self.relay.post_older(conversation_id)
        return [
            m for m in self.messages(conversation_id) if before is None or (m.seq or 0) < before
        ]

    # --- mutations (optimistic: committed to the outbox before returning) ------------------------

    def _enqueue(self, op: str, target: str, body: dict[str, Any]) -> None:
        body["_origin"] = self.relay.member_id if self.relay else ""
        body["op"] = str(uuid.uuid4())  # the idempotency key of every retry, by any leader
        self.store.enqueue(op, target, body)
        if op in ("patch", "delete"):  # committed first: then it wins over a held chain
            self.store.supersede_held(target, op, set(body) - {"base_version", "_origin", "op"})
        self._outbox_changed()

    def _require(self, conversation_id: str) -> ConversationView:
        view = self._views.get(conversation_id)
        if view is None:
            raise KeyError(f"no conversation {conversation_id}")
        return view

    async def create_conversation(
        self, title: str, members: tuple[str, ...] | list[str] = ()
    ) -> ConversationView:
        title = p.clean_title(title)
        cid = str(uuid.uuid4())
        self._enqueue("create", cid, {"title": title, "members": sorted(set(members) - {self.me})})
        return self._views[cid]

    async def rename_conversation(self, conversation_id: str, title: str) -> None:
        view = self._require(conversation_id)
        self._enqueue(
            "patch", conversation_id, {"title": p.clean_title(title), "base_version": view.version}
        )

    async def set_pinned(self, conversation_id: str, pinned: bool) -> None:
        view = self._require(conversation_id)
        self._enqueue(
            "patch", conversation_id, {"pinned": bool(pinned), "base_version": view.version}
        )

    async def set_members(self, conversation_id: str, members: list[str]) -> None:
        view = self._require(conversation_id)
        self._enqueue(
            "patch",
            conversation_id,
            {"members": sorted(set(members)), "base_version": view.version},
        )

    async def resolve_conflict(self, conflict: Conflict, keep_mine: bool) -> None:
        """The user's answer for a chain held by a conflict: "keep mine" sends the whole chain
        again on top of the version the user was shown (a change made since is asked about
        again); "reload" drops it (theirs stays)."""
        ids = list(conflict.entry_ids) or [e.id for e in self.store.held(conflict.conversation_id)]
        if keep_mine and conflict.theirs is not None:
            # On top of what the user saw: a change made since is asked about again, not lost.
            self.store.release_held(ids, conflict.theirs.version)
        else:
            live = {e.id for e in self.store.outbox() if e.state in ("held", "queued")}
            self.store.remove([i for i in ids if i in live])
        self._outbox_changed()

    async def keep_mine(self, conflict: Conflict) -> None:
        """Re-apply our losing chain on top of the version the conflict showed."""
        await self.resolve_conflict(conflict, keep_mine=True)

    async def reload(self, conflict: Conflict) -> None:
        """Drop our losing chain: the change made elsewhere stays."""
        await self.resolve_conflict(conflict, keep_mine=False)

    async def delete_conversation(self, conversation_id: str) -> None:
        view = self._require(conversation_id)
        self._enqueue("delete", conversation_id, {"base_version": view.version})

    async def send_message(self, conversation_id: str, body: str) -> MessageView:
        self._require(conversation_id)
        if not body.strip():
            raise ValueError("a message must not be blank")
        if p.body_too_long(body):
            raise ValueError("a message is at most 64 KiB")
        mid = str(uuid.uuid4())
        self._enqueue("send", conversation_id, {"id": mid, "body": body})
        self.set_draft(conversation_id, "")  # --- drafts ---: sent, so cleared everywhere
        return next(m for m in self.messages(conversation_id) if m.id == mid)

    async def mark_read(self, conversation_id: str) -> None:
        view = self._require(conversation_id)
        if view.unread:
            self._enqueue("read", conversation_id, {"seq": view.message_count})

    async def dismiss_failed(self) -> None:
        """Drop actions the server refused (after the user has seen the error)."""
        self.store.remove(
            [e.id for es in self._pending.values() for e in es if e.state == "failed"]
        )
        self._outbox_changed()

    # --- sync state ------------------------------------------------------------------------------

    def set_visible(self, visible: bool) -> None:
        """True while any window of this process is visible (polling pauses otherwise)."""
        self.visible = visible
        if self.relay is not None:
            self.relay.post_visible(visible)
        if self.engine is not None:
            self.engine.set_visible(self.relay.any_visible() if self.relay else visible)

    def network_changed(self) -> None:
        """The network came up or changed: reconnect now rather than after a read timeout
        (a no-op in a follower: its leader's process sees the same network)."""
        if self.engine is not None:
            self.engine.reconnect_now()

    def set_server_url(self, url: str) -> None:
        """The server is served anew at ``url`` (the embedded server was restarted, maybe on
        another port). Every process keeps it for when it leads; the leader starts its sync
        over at once — its stream, its outbox, with a fresh token — rather than wait for what
        is in flight to the old address (that port may be another program's now). The profile
        key does not change (``profile`` names it, as for any server whose URL is not stable)."""
        self.config.server_url = url
        if self.engine is not None and self.relay is not None:
            self.relay.spawn(self._lead_again())

    async def _lead_again(self) -> None:
        async with self._moving:
            await self._stop_leading()
            if self.relay is not None and self.relay.leading:
                await self._start_leading()

    def _unsettled(self) -> bool:
        return any(e.state in ("queued", "sent") for e in self.store.outbox())

    async def wait_synced(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 (public API)
        """Until every action is acknowledged and its change applied here (read-your-writes)."""
        async with asyncio.timeout(timeout):
            while self._unsettled():
                await self._changed.wait()

