"""uvicorn's httptools protocol enforcing :class:`server.limits.HttpLimits` per connection: a
head over its size or line count gets 431, a head not complete in time is closed (408 if it had
begun), a connection past the cap gets 503 to its request. The idle keep-alive timeout is
uvicorn's own ``timeout_keep_alive``, set from the same limits by :mod:`server.runner`. Each
refusal and idle close is counted in :class:`server.metrics.Metrics` when the class has one."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .limits import HttpLimits
from .metrics import Metrics

log = logging.getLogger(__name__)
_LOG_EVERY_S = 60.0  # an attack of 10,000 slow heads is one line a minute, not 10,000
_last_logged: dict[str, float] = {}
_unlogged: dict[str, int] = {}


def _log_rejected(reason: str, text: str) -> None:
    """A rejection's warning, at most once a minute per reason (the metric counts each)."""
    now = time.monotonic()
    last = _last_logged.get(reason)
    if last is not None and now - last < _LOG_EVERY_S:
        _unlogged[reason] = _unlogged.get(reason, 0) + 1
        return
    _last_logged[reason] = now
    more = _unlogged.pop(reason, 0)
    suffix = f" (and {more} more since the last such line)" if more else ""
    log.warning("%s%s; concord_http_rejected_total counts each", text, suffix)


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing a head with too many lines."""


def _error(status: int, reason: str, code: str, message: str) -> bytes:
    """A whole response with the JSON error body, written straight to the transport."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


async def _over_capacity(scope: Any, receive: Any, send: Any) -> None:
    """The ASGI answer for a connection accepted past ``max_connections``."""
    body = json.dumps(
        {"error": {"code": "over_capacity", "message": "the server has too many connections"}}
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", b"5"),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class LimitedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits of :class:`HttpLimits` (see the module)."""

    limits: ClassVar[HttpLimits] = HttpLimits()
    metrics: ClassVar[Metrics | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._awaiting_head = True
        self._head_bytes = 0
        self._header_lines = 0
        self._heads_done = 0
        self._head_too_large = False
        self._head_begun = False
        self._over_capacity = False
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # The set holds every open connection, this one included.
        self._over_capacity = len(self.connections) > self.limits.max_connections
        self._start_head_timer()  # an idle connection that never sends a head is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        heads_before, in_head = self._heads_done, self._awaiting_head
        super().data_received(data)
        # A chunk that began in a body (its end completing the message) is not head bytes.
        if self.transport.is_closing() or not self._awaiting_head or not in_head:
            return
        if self._heads_done == heads_before:  # no head ended in this chunk: all of it is head
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_head_bytes:
                self._reject_large_head()

    def on_message_begin(self) -> None:
        # The first byte of a head: from now on it has ``head_timeout_s`` to be complete.
        self._head_begun = True
        self._header_lines = 0
        if self._head_timer is None:
            self._start_head_timer()
        super().on_message_begin()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_lines += 1
        if self._header_lines > self.limits.max_header_lines:
            self._head_too_large = True
            raise _HeadTooLarge
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._stop_head_timer()
        # A head that arrived in one read was not counted in data_received: measure it here.
        size = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
        if size > self.limits.max_head_bytes:
            self._head_too_large = True
            raise _HeadTooLarge
        self._head_begun = False
        self._awaiting_head = False
        self._head_bytes = 0
        self._heads_done += 1
        if not self._over_capacity:
            super().on_headers_complete()
            return
        _log_rejected(
            "over_capacity", f"refused a request: over {self.limits.max_connections} connections"
        )
        self._count_rejected("over_capacity")
        app, self.app = self.app, _over_capacity
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._awaiting_head = True  # the next head's timer starts at its first byte

    def send_400_response(self, msg: str) -> None:
        if self._head_too_large:
            self._reject_large_head()
        else:
            super().send_400_response(msg)

    def timeout_keep_alive_handler(self) -> None:
        if not self.transport.is_closing() and self.metrics is not None:
            self.metrics.http_idle_closed.labels("keepalive").inc()
        super().timeout_keep_alive_handler()

    def _count_rejected(self, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.http_rejected.labels(reason).inc()

    def _reject_large_head(self) -> None:
        self._stop_head_timer()
        if self.transport.is_closing():
            return
        self._count_rejected("head_too_large")
        _log_rejected(
            "head_too_large", f"refused a request head over {self.limits.max_head_bytes} bytes"
        )
        self.transport.write(
            _error(
                431, "Request Header Fields Too Large", "head_too_large", "request head too large"
            )
        )
        self.transport.close()

    def _start_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.limits.head_timeout_s, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._head_begun:  # a head started, not finished in time (an idle one: just closed)
            _log_rejected(
                "head_timeout",
                f"closed a connection: no request head in {self.limits.head_timeout_s:g}s",
            )
            self._count_rejected("head_timeout")
            if self.cycle is None or self.cycle.response_complete:
                self.transport.write(
                    _error(408, "Request Timeout", "head_timeout", "request head too slow")
                )
        elif self.metrics is not None:
            self.metrics.http_idle_closed.labels("before_first_request").inc()
        self.transport.close()


def protocol_class(limits: HttpLimits, metrics: Metrics | None = None) -> type[LimitedHttpProtocol]:
    """A protocol class carrying ``limits`` and the app's ``metrics`` (uvicorn instantiates it
    per connection)."""
    attrs = {"limits": limits, "metrics": metrics}
    return type("LimitedHttpProtocol", (LimitedHttpProtocol,), attrs)
