"""Sends the outbox (leader only): in order, with idempotency keys, retries and backoff.

Creates and sends carry the client-chosen UUID, so a retry after a lost answer is harmless.
A patch whose retry meets ``409`` with the server already showing our values counts as done;
so does a delete retried into ``404``. Any other ``409`` is a conflict (the server wins; the
caller decides whether to re-apply "keep mine"); any other permanent 4xx rolls the action back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import protocol as p
from ._aio import wait_event
from .engine import SignInRequired, SyncEngine, reconnect_delay
from .http import ApiError, NetworkError
from .model import OutboxEntry

log = logging.getLogger("concord.outbox")


@dataclass(frozen=True, slots=True)
class Conflict:
    """Our action lost to a change made elsewhere; ``theirs`` is the server's current row."""

    conversation_id: str
    mine: dict[str, Any]
    theirs: p.Conversation | None
    entry_id: int


@dataclass(frozen=True, slots=True)
class Rejected:
    """The server refused an action for good; it was rolled back."""

    op: str
    conversation_id: str
    code: str
    message: str


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
        self.on_settled = on_settled
        self.on_conflict = on_conflict
        self.on_rejected = on_rejected
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._rebased: dict[str, tuple[int, int]] = {}  # cid → (our base, version we made)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="concord-outbox")
        self._wake.set()

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def poke(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        attempt = 0
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.drain()
                attempt = 0
            except SignInRequired:
                await self.engine._signed_in.wait()
                self._wake.set()
            except (NetworkError, ApiError) as exc:
                delay = reconnect_delay(attempt, 0.5, 30.0, getattr(exc, "retry_after", 0) or 0)
                attempt += 1
                log.info("outbox send failed (%s); retrying in %.1f s", exc, delay)
                await wait_event(self._wake, delay)
                self._wake.set()

    async def drain(self) -> None:
        """Send every queued entry in order; raises on the first transient failure."""
        for _ in range(10_000):
            queued = [e for e in self.store.outbox() if e.state == "queued"]
            if not queued:
                return
            entry = queued[0]
            self.store.mark_attempt(entry.id)
            try:
                seq = await self._send(entry)
            except ApiError as exc:
                if not exc.permanent or exc.status == 401:
                    raise
                self._settle_refused(entry, exc)
            else:
                if seq is None:
                    self.store.remove([entry.id])
                else:
                    self.store.mark_acked(entry.id, seq)
                    self.store.settle()
            self.on_settled()

    async def _send(self, e: OutboxEntry) -> int | None:
        """Send one entry; its change seq, or None when it turned out to be done already."""
        api, call, body, cid = self.engine.api, self.engine.call, e.body, e.target
        if e.op == "create":
            req = p.ConversationCreate(id=cid, title=body["title"], members=body.get("members", []))
            return (await call(api.create_conversation, req)).seq
        if e.op == "send":
            return (
                await call(api.send_message, cid, p.MessageCreate(body["id"], body["body"]))
            ).seq
        if e.op == "read":
            return (await call(api.mark_read, cid, body["seq"])).seq
        base = self._base(cid, body["base_version"])
        if e.op == "delete":
            try:
                return (await call(api.delete_conversation, cid, base)).seq
            except ApiError as exc:
                if exc.status == 404:
                    return None  # already gone (our earlier try, or another device)
                raise
        fields = {k: body[k] for k in ("title", "pinned", "members") if k in body}
        try:
            result = await call(api.patch_conversation, cid, p.ConversationPatch(base, **fields))
        except ApiError as exc:
            if exc.status == 409 and exc.current is not None and _shows(exc.current, fields):
                return None  # our own earlier try went through; its answer was lost
            raise
        self._rebased[cid] = (base, result.conversation.version)
        return result.seq

    def _base(self, cid: str, base: int) -> int:
        """A later patch written against the version our earlier patch replaced follows it."""
        old, new = self._rebased.get(cid, (None, None))
        return new if old == base and new is not None else base

    def _settle_refused(self, entry: OutboxEntry, exc: ApiError) -> None:
        self.store.remove([entry.id])
        if exc.status == 409 and entry.op in ("patch", "delete"):
            self.on_conflict(Conflict(entry.target, entry.body, exc.current, entry.id))
        else:
            self.on_rejected(Rejected(entry.op, entry.target, exc.code, exc.message))


def _shows(current: p.Conversation, fields: dict[str, Any]) -> bool:
    for key, value in fields.items():
        have = getattr(current, key)
        if key == "members":
            if set(have) != set(value) | {current.creator}:
                return False
        elif have != value:
            return False
    return True
