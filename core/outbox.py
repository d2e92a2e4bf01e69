"""Sends the outbox (leader only): in order, with idempotency keys, retries and backoff.

Every action carries a key the server remembers: creates and sends their client-chosen UUID,
patches and deletes their operation id (``Idempotency-Key``), so a retry after a lost answer
gets the first answer back. A device's chain of patches to one conversation never conflicts
with itself: each goes out against the version its predecessors made (``LocalStore.rebased``,
durable in the cache, so it survives a lost answer, a leader's death and a restart); so does a
device's chain of edits to one message (``LocalStore.rebased_message``), and an edit of a message
still being sent goes out after the send. A ``409`` is a conflict only when the server's row
carries a change made elsewhere; the rest of that conversation's chain is then held and the user
asked once. Any other permanent 4xx rolls the
action back (a message's edit that lost to another device's edit too: its text goes back to the
draft). Backoff is full jitter; any sign that the server is reachable again sends at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from . import protocol as p
from ._aio import wait_event
from .engine import SignInRequired, SyncEngine, reconnect_delay
from .http import ApiError, NetworkError
from .model import Conflict, OutboxEntry

log = logging.getLogger(__name__)
T = TypeVar("T")

PATCH_FIELDS = ("title", "pinned", "members")
# A send still waiting this long while the server is shown reachable on another connection (the
# stream is live, or it was just reached again) is taken to sit on a dead one: a black-holed path
# gives no error until the request timeout. It is abandoned and sent again at once (safe: every
# request carries its idempotency key). The wait is at least STALE_SEND_S and four times what
# requests take of late, and doubles with each abandonment in a row, so a slow link or a busy
# server still gets its answers through.
STALE_SEND_S = 0.5


@dataclass(frozen=True, slots=True)
class Rejected:
    """The server refused an action for good; it was rolled back."""

    op: str
    conversation_id: str
    code: str
    message: str
    body: dict[str, Any] | None = None  # what the user had typed or chosen


def merged_chain(entries: list[OutboxEntry]) -> dict[str, Any]:
    """What a chain of patches (and maybe a final delete) would make, as one change."""
    mine: dict[str, Any] = {}
    for e in entries:
        if e.op == "delete":
            mine["delete"] = True
        mine.update({k: e.body[k] for k in PATCH_FIELDS if k in e.body})
        mine.setdefault("_origin", e.body.get("_origin", ""))
    return mine


class OutboxSender:
    def __init__(
        self,
        engine: SyncEngine,
        *,
        on_settled: Callable[[], None],
        on_conflict: Callable[[Conflict], None],
        on_rejected: Callable[[Rejected], None],
    ) -> None:
        self.engine = engine
        self.store = engine.store
        self.api = engine.api  # its requests get a token, and one refresh on a 401: engine.tokens
        self.tokens = engine.tokens
        self.on_settled = on_settled
        self.on_conflict = on_conflict
        self.on_rejected = on_rejected
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._attempt = 0
        self._not_before = 0.0  # monotonic time before which the server asked us not to retry
        self._sending_since: float | None = None
        self._abandon = asyncio.Event()
        self._abandoned = 0  # abandonments in a row
        self._typical_s = 0.05  # moving average of how long a request takes

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="concord-outbox")
        self._wake.set()
        self.engine.on_reachable.append(self.reachable)
        # Chains held when the last leader stopped: sent again, so that the conflict (if it
        # still is one) is asked once more with the server's row as it is now.
        self.store.requeue_held()

    async def stop(self) -> None:
        if self.reachable in self.engine.on_reachable:
            self.engine.on_reachable.remove(self.reachable)
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def poke(self) -> None:
        """Something was queued: send now (the current backoff is not waited out)."""
        self._wake.set()

    def reachable(self) -> None:
        """The stream went live, a poll succeeded, the network changed: send now, fresh backoff
        (and give up on a send that is stuck on a connection that went dead meanwhile)."""
        self._attempt = 0
        self._wake.set()
        since = self._sending_since
        if since is not None and time.monotonic() - since > self._stale_after():
            self._abandon.set()

    def _stale_after(self) -> float:
        return min(max(STALE_SEND_S, 4 * self._typical_s) * 2.0**self._abandoned, 60.0)

    async def _request(self, call: Awaitable[T]) -> T:
        """One request that is abandoned (raised as a NetworkError) when it outlives a live path
        to the server: :meth:`reachable` says so, or the stream is live all along."""
        request = asyncio.ensure_future(call)
        self._abandon.clear()
        abandon = asyncio.ensure_future(self._abandon.wait())
        self._sending_since = started = time.monotonic()
        try:
            for _ in range(10_000):  # bounded: each round waits at least STALE_SEND_S
                done, _ = await asyncio.wait(
                    {request, abandon},
                    timeout=self._stale_after(),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if done or self.engine.live:
                    break
        finally:
            self._sending_since = None
            abandon.cancel()
            if not request.done():
                request.cancel()
            await asyncio.gather(request, abandon, return_exceptions=True)
        if request.cancelled():
            self._abandoned += 1
            raise NetworkError("a request stuck on a dead connection was abandoned")
        self._abandoned = 0
        if request.exception() is None:
            elapsed = time.monotonic() - started
            self._typical_s = 0.8 * self._typical_s + 0.2 * elapsed
        return request.result()

    async def _run(self) -> None:
        cfg = self.engine.config
        while True:
            await self._wake.wait()
            self._wake.clear()
            hold_off = self._not_before - time.monotonic()
            if hold_off > 0:  # a server's Retry-After holds even when the server is reachable
                await asyncio.sleep(hold_off)
            try:
                await self.drain()
                self._attempt = 0
            except SignInRequired:
                await self.tokens.wait_signed_in()
                self._wake.set()
            except (NetworkError, ApiError) as exc:
                retry_after = getattr(exc, "retry_after", 0) or 0
                self._not_before = time.monotonic() + retry_after
                delay = reconnect_delay(
                    self._attempt, cfg.outbox_backoff_base_s, cfg.backoff_cap_s, retry_after
                )
                self._attempt += 1
                log.info("outbox send failed (%s); retrying in %.1f s", exc, delay)
                await wait_event(self._wake, delay)
                self._wake.set()

    async def drain(self) -> None:
        """Send every queued entry in order; raises on the first transient failure."""
        for _ in range(10_000):
            entry = self.store.next_queued()
            if entry is None:
                return
            op_id = self.store.begin_attempt(entry)
            try:
                seq, made = await self._send(entry, op_id)
            except ApiError as exc:
                if not exc.permanent or exc.status == 401:
                    raise
                self._settle_refused(entry, exc)
            else:
                if seq is None:
                    self.store.remove([entry.id])
                else:
                    self.store.mark_acked(entry.id, seq, made)
                    self.store.settle()
            self.on_settled()

    async def _send(self, e: OutboxEntry, op_id: str) -> tuple[int | None, tuple[str, int] | None]:
        """Send one entry: its change seq (None when already done) and the version it made."""
        api, body, cid, request = self.api, e.body, e.target, self._request
        if e.op == "create":
            req = p.ConversationCreate(id=cid, title=body["title"], members=body.get("members", []))
            return (await request(api.create_conversation(req))).seq, None
        if e.op == "send":
            msg = p.MessageCreate(body["id"], body["body"])
            return (await request(api.send_message(cid, msg))).seq, None
        if e.op == "read":
            return (await request(api.mark_read(cid, body["seq"]))).seq, None
        if e.op == "edit_message":
            # After this device's own earlier edits of the message: they never conflict.
            base = self.store.rebased_message(body["id"], body["base_version"])
            edit = p.MessagePatch(base, body["body"])
            edited = await request(api.edit_message(cid, body["id"], edit, op_id))
            self.store.add_own_message_version(body["id"], cid, edited.message.version)
            return edited.seq, None
        if e.op == "delete_message":
            try:
                return (await request(api.delete_message(cid, body["id"], op_id))).seq, None
            except ApiError as exc:
                if exc.status == 404:
                    return None, None  # gone already (deleted on another device too)
                raise
        base = self.store.rebased(cid, body["base_version"])
        if e.op == "delete":
            try:
                return (await request(api.delete_conversation(cid, base, op_id))).seq, None
            except ApiError as exc:
                if exc.status == 404:
                    return None, None  # gone already (deleted elsewhere too)
                raise
        patch = p.ConversationPatch(base, **{k: body[k] for k in PATCH_FIELDS if k in body})
        result = await request(api.patch_conversation(cid, patch, op_id))
        return result.seq, (cid, result.conversation.version)

    def _settle_refused(self, entry: OutboxEntry, exc: ApiError) -> None:
        cid = entry.target
        chain = entry.op in ("patch", "delete")
        if chain and exc.status == 409 and exc.code == "version_conflict":
            self._ask(cid, self.store.hold_chain(cid, entry.id), exc.current)
            return
        if chain and exc.status == 404:
            self.store.drop_chain(cid, entry.id)  # one notice for the chain, not one per entry
        else:
            self.store.remove([entry.id])
        self.on_rejected(Rejected(entry.op, cid, exc.code, exc.message, entry.body))

    def _ask(self, cid: str, held: list[OutboxEntry], theirs: p.Conversation | None) -> None:
        if held:
            ids = tuple(e.id for e in held)
            self.on_conflict(Conflict(cid, merged_chain(held), theirs, ids[0], ids))
