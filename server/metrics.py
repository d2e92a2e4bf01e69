"""Prometheus metrics, one registry per app (several apps can live in one process)."""

from __future__ import annotations

import hmac
import ipaddress
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import RequestRejected


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.open_streams = Gauge("concord_open_streams", "Open SSE streams", registry=r)
        self.changes_appended = Counter(
            "concord_changes_appended", "Change rows appended to users' feeds", registry=r
        )
        self.events_delivered = Counter(
            "concord_events_delivered", "Change events written to SSE streams", registry=r
        )
        self.stream_resumes = Counter(
            "concord_stream_resumes", "Streams resumed from a client cursor", registry=r
        )
        self.stream_resets = Counter(
            "concord_stream_resets", "Streams told to do a full sync", ["reason"], registry=r
        )
        self.slow_disconnects = Counter(
            "concord_slow_disconnects",
            "Streams closed because the consumer fell behind",
            registry=r,
        )
        self.password_checks = Counter(
            "concord_password_checks", "Passwords checked at sign-in", registry=r
        )
        self.refreshes = Counter(
            "concord_token_refreshes",
            "Refresh tokens presented, by outcome (rotated, replayed, reused, invalid)",
            ["outcome"],
            registry=r,
        )
        # Below the app (server/http_protocol.py): never seen by the latency histogram.
        self.http_rejected = Counter(
            "concord_http_rejected",
            "Requests refused before the app (head_too_large, head_timeout, over_capacity)",
            ["reason"],
            registry=r,
        )
        self.http_idle_closed = Counter(
            "concord_http_idle_closed",
            "Idle connections closed (before_first_request, keepalive)",
            ["phase"],
            registry=r,
        )
        # The sign-in throttle's table (server/throttle.py): windows evicted to make room, and
        # new keys refused because every tracked window was still active.
        self.throttle_evictions = Counter(
            "concord_throttle_evictions",
            "Throttle windows evicted to make room, by whether their minute had passed",
            ["window"],  # passed | active
            registry=r,
        )
        self.throttle_full = Counter(
            "concord_throttle_full_refusals",
            "Sign-ins refused because the throttle table was full of active windows",
            registry=r,
        )
        # --redis: limits decided by this instance alone because Redis was unreachable
        # (server/throttle.py RedisThrottle, server/stream_cap.py RedisStreamCap).
        self.shared_limits_fallbacks = Counter(
            "concord_shared_limits_fallbacks",
            "Limit decisions taken per instance because Redis was unreachable",
            ["limit"],  # sign_in | streams
            registry=r,
        )
        self.request_latency = Histogram(
            "concord_http_request_duration_seconds",
            "Time from request to response headers",
            ["method", "route", "status"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


class LatencyMiddleware:
    """Observes each HTTP request's latency to its response headers, by route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                route = scope.get("route")
                path = getattr(route, "path", None) or "unmatched"
                self.metrics.request_latency.labels(
                    scope["method"], path, str(message["status"])
                ).observe(time.perf_counter() - start)
            await send(message)

        await self.app(scope, receive, timed_send)


def scrape_allowed(request: Request, token: str | None) -> None:
    """``/metrics`` is server-wide: only the scrape token opens it, never a user's token.

    Without a configured token it answers loopback peers only, and not through a proxy
    (a request carrying ``Forwarded``/``X-Forwarded-For`` came from elsewhere): 404 otherwise.
    """
    if token is not None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            raise RequestRejected(
                401,
                "unauthorized",
                "the metrics scrape token is required",
                headers={"WWW-Authenticate": 'Bearer realm="concord-metrics"'},
            )
        return
    peer = request.client.host if request.client else ""
    try:
        loopback = ipaddress.ip_address(peer).is_loopback
    except ValueError:
        loopback = False
    proxied = "forwarded" in request.headers or "x-forwarded-for" in request.headers
    if not loopback or proxied:
        raise RequestRejected(404, "not_found", "metrics: set a scrape token (--metrics-token)")
