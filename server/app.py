"""``create_app(settings)``: the Starlette application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

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
from .settings import Settings
from .storage import SQLiteStorage, Storage
from .throttle import MemoryThrottle, SignInGuard, parse_proxies

log = logging.getLogger(__name__)

# Streams end on *our* shutdown signal (FeedHub.begin_shutdown sends ``bye``), not on
# sse-starlette's process-global flag, which would also cut other apps in the same process.
AppStatus.disable_automatic_graceful_drain()

P = p.API_PREFIX
MESSAGE = f"{P}/conversations/{{conversation_id}}/messages/{{message_id}}"
ROUTES = [
    Route(f"{P}/auth/token", routes.token, methods=["POST"]),
    Route(f"{P}/auth/refresh", routes.refresh, methods=["POST"]),
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


def create_app(settings: Settings | None = None, storage: Storage | None = None) -> Starlette:
    """Build the app. Storage opens on startup and closes on shutdown (ASGI lifespan)."""
    settings = settings or Settings()
    store = storage or SQLiteStorage(
        settings.database_path, retention=settings.retention, synchronous_full=settings.durable
    )
    metrics = Metrics()
    ctx = AppContext(
        settings=settings,
        storage=store,
        metrics=metrics,
        tokens=Tokens(store, settings.access_ttl_s, settings.refresh_ttl_s),
        sign_in=SignInGuard(
            MemoryThrottle(settings.throttle_max_keys),
            per_name=settings.login_failures_per_minute,
            per_address=settings.login_attempts_per_address,
            proxies=parse_proxies(settings.trusted_proxies),
        ),
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await store.open()
        ctx.hub = FeedHub(store.epoch)
        secret = await store.server_secret(tickets.SECRET_NAME)
        ctx.tickets = tickets.StreamTickets(secret, settings.stream_ticket_ttl_s)
        ticker = asyncio.create_task(
            ctx.hub.run_ticker(min(0.25, settings.heartbeat_s / 4), settings.send_timeout_s)
        )
        log.info("storage open at %s (epoch %d)", settings.database_path, store.epoch)
        try:
            yield
        finally:
            ctx.hub.begin_shutdown()
            ticker.cancel()
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
