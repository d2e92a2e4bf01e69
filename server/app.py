"""``create_app(settings)``: the Starlette application."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from sse_starlette.sse import AppStatus
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route

from core import protocol as p

from . import openapi, routes, stream, tickets
from .auth import Tokens
from .context import AppContext
from .errors import EXCEPTION_HANDLERS
from .feed import FeedHub
from .metrics import LatencyMiddleware, Metrics
from .pokes import pokes_for
from .settings import Settings
from .storage import Storage
from .storage.factory import describe, storage_for
from .stream_cap import LocalStreamCap, StreamCap
from .throttle import MemoryThrottle, SignInGuard, Throttle, parse_proxies

log = logging.getLogger(__name__)

# Streams end on *our* shutdown signal (FeedHub.begin_shutdown sends ``bye``), not on
# sse-starlette's process-global flag, which would also cut other apps in the same process.
AppStatus.disable_automatic_graceful_drain()

P = p.API_PREFIX
MESSAGE = f"{P}/conversations/{{conversation_id}}/messages/{{message_id}}"
ROUTES = [
    Route(f"{P}/auth/token", routes.token, methods=["POST"]),
    Route(f"{P}/auth/refresh", routes.refresh, methods=["POST"]),
    Route(f"{P}/auth/logout", routes.logout, methods=["POST"]),
    Route(f"{P}/auth/logout-all", routes.logout_all, methods=["POST"]),
    Route(f"{P}/auth/stream-ticket", stream.stream_ticket, methods=["POST"]),
    Route(f"{P}/events", stream.events, methods=["GET"]),
    Route(f"{P}/changes", routes.changes, methods=["GET"]),
    Route(f"{P}/snapshot", routes.snapshot, methods=["GET"]),
    Route(f"{P}/conversations", routes.list_conversations, methods=["GET"]),
    Route(f"{P}/conversations", routes.create_conversation, methods=["POST"]),
    Route(f"{P}/conversations/{{conversation_id}}", routes.patch_conversation, methods=["PATCH"]),
    Route(f"{P}/conversations/{{conversation_id}}", routes.delete_conversation, methods=["DELETE"]),
    Route(f"{P}/conversations/{{conversation_id}}/messages", routes.list_messages, methods=["GET"]),
    Route(f"{P}/conversations/{{conversation_id}}/messages", routes.send_message, methods=["POST"]),
    Route(MESSAGE, routes.edit_message, methods=["PATCH"]),
    Route(MESSAGE, routes.delete_message, methods=["DELETE"]),
    Route(f"{P}/conversations/{{conversation_id}}/read", routes.mark_read, methods=["POST"]),
    Route(f"{P}/search", routes.search, methods=["GET"]),
    Route(f"{P}/health", routes.health, methods=["GET"]),
    Route(f"{P}/metrics", routes.metrics, methods=["GET"]),
    Route(f"{P}/openapi.json", openapi.endpoint, methods=["GET"]),
]


def _cors(settings: Settings) -> list[Middleware]:
    """CORS for the configured origins only (none by default), with preflight. No cookies are
    involved (bearer tokens and stream tickets), so credentials stay off."""
    if not settings.cors_origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"],
            expose_headers=["Retry-After", "WWW-Authenticate"],
            max_age=600,
        )
    ]


def _limits(
    settings: Settings, metrics: Metrics
) -> tuple[Throttle, StreamCap, Callable[[], Awaitable[None]] | None]:
    """The sign-in throttle and the stream cap: this instance's, or with ``--redis`` the
    deployment's (§4.7); and what closes their Redis client."""
    local = MemoryThrottle(settings.throttle_max_keys, metrics=metrics)
    if not settings.redis_url:
        return local, LocalStreamCap(settings.max_streams_per_user), None
    # By name: the desktop app (desktop.embedded) and its bundle never import redis.
    shared = importlib.import_module(f"{__package__}.throttle_redis")
    caps = importlib.import_module(f"{__package__}.stream_cap_redis")
    client = shared.redis_client(settings.redis_url)
    prefix = settings.redis_prefix
    throttle = shared.RedisThrottle(
        client, prefix=f"{prefix}throttle:", local=local, metrics=metrics
    )
    cap = caps.RedisStreamCap(
        client,
        settings.max_streams_per_user,
        heartbeat_s=settings.heartbeat_s,
        prefix=f"{prefix}streams:",
        hash_ttl_s=max(86400.0, 2 * settings.access_ttl_s),
        metrics=metrics,
    )
    return throttle, cap, client.aclose


def _head_check(ctx: AppContext) -> Callable[[int], None]:
    """``on_watching`` for the pokes: re-read a user's head once this instance hears their
    channel, and wake their streams if it moved (a write between the stream's first read and
    the subscription would otherwise wait for a heartbeat)."""
    running: set[asyncio.Task[None]] = set()

    async def check(user_id: int) -> None:
        try:
            ctx.hub.poke(user_id, await ctx.reads.head(user_id))
        except Exception as exc:  # storage away: the next heartbeat reads again
            log.info("head check for user %d failed: %s", user_id, exc)

    def start(user_id: int) -> None:
        task = asyncio.create_task(check(user_id))
        running.add(task)
        task.add_done_callback(running.discard)

    return start


def create_app(settings: Settings | None = None, storage: Storage | None = None) -> Starlette:
    """Build the app. Storage opens on startup and closes on shutdown (ASGI lifespan)."""
    settings = settings or Settings()
    store = storage or storage_for(
        settings.database, retention=settings.retention, durable=settings.durable
    )
    metrics = Metrics()
    throttle, stream_cap, close_shared = _limits(settings, metrics)
    ctx = AppContext(
        settings=settings,
        storage=store,
        metrics=metrics,
        tokens=Tokens(
            store,
            settings.access_ttl_s,
            settings.refresh_ttl_s,
            grace_s=settings.refresh_grace_s,
            recheck_s=settings.token_recheck_s,
        ),
        sign_in=SignInGuard(
            throttle,
            per_name=settings.login_failures_per_minute,
            per_address=settings.login_attempts_per_address,
            proxies=parse_proxies(settings.trusted_proxies),
        ),
        stream_cap=stream_cap,
        pokes=pokes_for(settings.redis_url, prefix=f"{settings.redis_prefix}feed:"),
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await store.open()
        ctx.hub = FeedHub(store.epoch, ctx.pokes)
        await ctx.pokes.start(store.epoch, ctx.hub.poke, _head_check(ctx))
        ctx.tokens.on_revoke.append(ctx.hub.revoke)
        secret = await store.server_secret(tickets.SECRET_NAME)
        ctx.tickets = tickets.StreamTickets(secret, settings.stream_ticket_ttl_s)
        await ctx.stream_cap.start()
        ticker = asyncio.create_task(
            ctx.hub.run_ticker(min(0.25, settings.heartbeat_s / 4), settings.send_timeout_s)
        )
        log.info("storage open at %s (epoch %d)", describe(settings.database), store.epoch)
        try:
            yield
        finally:
            ctx.hub.begin_shutdown()
            ticker.cancel()
            await ctx.stream_cap.close()
            await ctx.pokes.close()
            if close_shared is not None:
                await close_shared()
            await store.close()

    app = Starlette(
        routes=ROUTES,
        middleware=[*_cors(settings), Middleware(LatencyMiddleware, metrics=metrics)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    tickets.scrub_access_log()
    return app
