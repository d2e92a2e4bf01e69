"""``GET /api/v1/events``: the per-user change feed as Server-Sent Events (docs/architecture.md §4).

Order of a stream: ``hello`` (its ``id`` is the position the stream starts from); then ``reset``
if the client's cursor cannot be resumed (``id`` the head: the stream continues live from
``hello.head``); the missed changes from storage; then live changes as they commit, with
``: hb <head>`` comments, ``reauth`` before the credential expires, ``expired`` when it has (then
the stream ends) and ``bye`` on shutdown. Every change is sent once and in order: a gap between
the cursor and a live change is filled from storage first. The credential is a bearer token or,
for browsers, a stream ticket (``?ticket=``, :mod:`server.tickets`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator
from typing import Any

from sse_starlette.sse import EventSourceResponse, SendTimeoutError
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from core import protocol as p

from .auth import now_ms
from .context import AppContext, context
from .errors import RequestRejected
from .feed import FeedHub, Subscription, change_frame
from .metrics import Metrics
from .routes import cursor_problem, parse_cursor
from .settings import Settings
from .storage import TokenInfo
from .stream_cap import Lease

CATCH_UP_PAGE = 500

log = logging.getLogger(__name__)


def _event(event: str, obj: object, retry: int | None = None, id: str | None = None) -> bytes:
    head = b"retry: %d\n" % retry if retry is not None else b""
    if id is not None:
        head += b"id: %s\n" % id.encode()
    return head + b"event: %s\ndata: %s\n\n" % (event.encode(), p.encode(obj))


def _retry_ms(settings: Settings) -> int:
    """``retry`` on ``hello``: spread ±25 % around the setting, so that the clients of a
    restarted instance do not all come back in the same second."""
    return random.randint(settings.retry_ms * 3 // 4, settings.retry_ms * 5 // 4)


async def _credential(ctx: AppContext, request: Request) -> TokenInfo:
    """The bearer token, or else a stream ticket in ``?ticket=`` (browsers' ``EventSource``)."""
    ticket = request.query_params.get("ticket")
    if ticket is None or "authorization" in request.headers:
        return await ctx.tokens.authenticate(request)
    now = now_ms()
    user = ctx.tickets.verify(ticket, now)
    if user is not None and not await ctx.storage.session_live(user.session, now):
        user = None  # signed out since the ticket was issued
    if user is None:
        raise RequestRejected(
            401,
            "invalid_ticket",
            "the stream ticket is invalid or expired; get a new one (POST auth/stream-ticket)",
        )
    return user


async def stream_ticket(request: Request) -> Response:
    """``POST auth/stream-ticket``: a ticket for this user's ``GET events?ticket=`` only."""
    ctx = context(request)
    user = await ctx.tokens.authenticate(request)
    ticket, expires_at = ctx.tickets.issue(user, now_ms())
    return Response(
        p.encode(p.StreamTicket(ticket, expires_at)),
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


async def events(request: Request) -> Response:
    ctx = context(request)
    user = await _credential(ctx, request)
    if ctx.hub.shutting_down:
        raise RequestRejected(
            503, "shutting_down", "server is shutting down", headers={"Retry-After": "2"}
        )
    header = request.headers.get("last-event-id")
    query = request.query_params.get("since")
    cursor: tuple[int, int] | str | None = None  # (epoch, seq), or a reason it is unusable
    if header is not None and header.strip():
        try:
            cursor = parse_cursor(header.strip(), ctx.storage.epoch)
        except p.ProtocolError:
            cursor = "invalid_cursor"  # a stale or corrupt id from a reconnecting client
    elif query:  # an empty ?since= is no cursor (a fresh EventSource's lastEventId is "")
        try:
            cursor = parse_cursor(query, ctx.storage.epoch)
        except p.ProtocolError as exc:
            raise RequestRejected(400, "invalid_cursor", str(exc)) from None
    # The cap (per instance, or for the deployment with --redis) is checked and taken in one
    # step, so concurrent opens cannot all pass it; the response gives the slot back however
    # the stream ends. The stream unsubscribes when it ends; the background task covers a body
    # never iterated (HEAD, or a client gone before the first byte).
    lease = await ctx.stream_cap.acquire(user.user_id)  # or 429 too_many_streams
    sub = ctx.hub.subscribe(user.user_id, ctx.settings.stream_queue_size, user.session)
    return _FeedResponse(
        _stream(ctx, user, cursor, sub),
        ping=0,
        # no-transform: no proxy or CDN may compress or buffer the stream.
        headers={"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"},
        send_timeout=None,  # the hub's ticker enforces send_timeout_s (see _FeedResponse)
        background=BackgroundTask(ctx.hub.unsubscribe, sub),
        metrics=ctx.metrics,
        hub=ctx.hub,
        sub=sub,
        lease=lease,
    )


class _FeedResponse(EventSourceResponse):
    """An event stream whose sends are timed by the hub's ticker instead of a per-send anyio
    cancel scope (which cost ~17% of the fan-out's CPU): a send still blocked after
    ``send_timeout_s`` — a client that stopped reading — is cancelled and ends the stream."""

    def __init__(
        self,
        *args: Any,
        metrics: Metrics,
        hub: FeedHub,
        sub: Subscription,
        lease: Lease,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        # sse-starlette adds ``Connection: keep-alive``: hop-by-hop, the server's business (and
        # forbidden in HTTP/2), never the application's.
        del self.headers["connection"]
        self.metrics = metrics
        self.hub = hub
        self.sub = sub
        self.lease = lease

    async def _send_with_timeout(self, send: Send, message: Any) -> None:
        sub = self.sub
        self.hub.begin_send(sub, asyncio.current_task(), asyncio.get_running_loop().time())
        try:
            await send(message)
        except asyncio.CancelledError:
            if not sub.send_expired:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()  # our own deadline, not a cancellation from outside
            raise SendTimeoutError() from None
        finally:
            self.hub.end_send(sub)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except SendTimeoutError:
            # The client stopped reading and a send blocked for send_timeout_s: a slow consumer
            # (its stream is closed already), not a server error worth a traceback.
            self.metrics.slow_disconnects.inc()
            log.info("closed a stream whose client stopped reading")
        finally:
            # However it ended (sse-starlette skips the background task when its task group
            # raises): the slot and the subscription go back. Both are idempotent.
            self.hub.unsubscribe(self.sub)
            self.lease.release()


async def _stream(
    ctx: AppContext, user: TokenInfo, claim: tuple[int, int] | str | None, sub: Subscription
) -> AsyncIterator[bytes]:
    settings, hub, storage, metrics = ctx.settings, ctx.hub, ctx.storage, ctx.metrics
    metrics.open_streams.inc()
    try:
        state = await storage.feed_state(user.user_id)
        reason = ""
        cursor = state.head
        if isinstance(claim, str):
            reason = claim
        elif claim is not None:
            reason = cursor_problem(*claim, storage.epoch, state.head, state.min_retained)
            if not reason:
                cursor = claim[1]
        # hello's id is where this stream starts: a browser cut off before or inside the backlog
        # resumes from there. With a reset coming, none: the reset carries it (a cut between the
        # two must bring the reset again).
        start_id = None if reason else f"{storage.epoch}:{cursor}"
        hello = p.Hello(
            epoch=storage.epoch,
            head=state.head,
            min_retained=state.min_retained,
            resumed=claim is not None and not reason,
            expires_at=user.expires_at,
            heartbeat_s=settings.heartbeat_s,
        )
        yield _event("hello", hello, retry=_retry_ms(settings), id=start_id)
        if reason:
            metrics.stream_resets.labels(reason).inc()
            head_id = f"{storage.epoch}:{state.head}"  # live from here, once fully synced
            yield _event("reset", p.Reset(reason, state.head), id=head_id)
        elif claim is not None:
            metrics.stream_resumes.inc()
        async for chunk in _changes(ctx, user, sub, cursor):
            yield chunk
    finally:
        hub.unsubscribe(sub)
        metrics.open_streams.dec()


async def _changes(
    ctx: AppContext, user: TokenInfo, sub: Subscription, cursor: int
) -> AsyncIterator[bytes]:
    settings, storage, metrics, reads = ctx.settings, ctx.storage, ctx.metrics, ctx.reads
    loop = asyncio.get_running_loop()
    expires_at = loop.time() + (user.expires_at / 1000 - time.time())
    reauth_at = expires_at - settings.reauth_lead_s
    reauth_sent = False
    next_hb = loop.time() + settings.heartbeat_s
    behind = True  # the cursor may lag storage: pull before trusting live pushes
    while True:
        if ctx.hub.shutting_down:
            yield _event("bye", p.Bye(), retry=random.randint(1000, 5000))
            return
        if sub.overflowed:
            metrics.slow_disconnects.inc()
            metrics.stream_resets.labels("slow").inc()
            yield _event("reset", p.Reset("slow", sub.known_head))
            return
        now = loop.time()
        if now >= expires_at or sub.revoked:
            yield _event("expired", p.Expired(user.expires_at))
            return
        if not reauth_sent and now >= reauth_at:
            reauth_sent = True
            yield _event("reauth", p.Reauth(user.expires_at))
        sub.wake.clear()
        frames: list[bytes] = []
        for seq, frame in sub.take():
            if seq <= cursor:
                continue
            if seq != cursor + 1:
                behind = True
                break
            frames.append(frame)
            cursor = seq
        if sub.known_head > cursor:
            behind = True
        while behind:
            # Shared with this user's other streams behind by the same range (§4.7).
            rows = await reads.changes_since(user.user_id, cursor, CATCH_UP_PAGE)
            for row in rows:
                frames.append(change_frame(storage.epoch, row))
                cursor = row.seq
            if len(rows) < CATCH_UP_PAGE:
                behind = False
            elif frames:
                metrics.events_delivered.inc(len(frames))
                yield b"".join(frames)
                frames = []
        if frames:
            metrics.events_delivered.inc(len(frames))
            yield b"".join(frames)
            continue
        now = loop.time()
        if now >= next_hb:
            # Both reads are batched with every other stream whose heartbeat is due (§4.7).
            if not await ctx.tokens.session_live(user.session):
                sub.revoked = True  # signed out elsewhere (another instance, the admin CLI)
                continue
            head = await reads.head(user.user_id)
            next_hb = now + settings.heartbeat_s
            if head > cursor:
                sub.poke(head)
            yield b": hb %d\n\n" % head
            continue
        ctx.hub.schedule(
            sub, min(next_hb, expires_at, reauth_at if not reauth_sent else expires_at)
        )
        await sub.wake.wait()
