"""Every error leaves the server as ``{"error": {"code", "message"}}`` with a 4xx status."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match

from core import protocol as p

from .storage import DomainError

log = logging.getLogger(__name__)


class RequestRejected(Exception):
    """Raised by a handler to refuse a request: answered as ``status`` with the JSON error body.

    The server-side counterpart of the client's ``core.http.ApiError``, which is what the client
    raises when it receives this answer.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        current: p.Conversation | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.current = current


def error_response(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    current: p.Conversation | None = None,
    current_message: p.Message | None = None,
) -> Response:
    return Response(
        p.error_body(code, message, current, current_message),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


async def request_rejected(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestRejected)
    return error_response(exc.status, exc.code, exc.message, exc.headers, exc.current)


async def domain_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    return error_response(
        exc.status, exc.code, str(exc), current=exc.current, current_message=exc.current_message
    )


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


def _allowed_methods(request: Request) -> str:
    """Every method the path allows (Starlette's 405 names only the first matching route's)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if route.matches(request.scope)[0] != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return ", ".join(sorted(methods))


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    return error_response(exc.status_code, code, str(exc.detail), headers)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal", "internal server error")


EXCEPTION_HANDLERS = {
    RequestRejected: request_rejected,
    DomainError: domain_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}
