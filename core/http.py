"""The sync server's API as typed coroutines. The only module of the client that imports httpx
(docs/architecture.md §1): a switch to an httpx fork is a change to this file alone.

Every failure is one of two exceptions: :class:`ApiError` (the server answered with an error
status; ``.status``/``.code`` say which) or :class:`NetworkError` (no usable answer: refused,
reset, timed out, not JSON, or not what the protocol says).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import Any, TypeVar

import httpx

from . import protocol as p
from .sse import ServerSentEvent, SSEResponseError, stream_events

T = TypeVar("T")


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        current: p.Conversation | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.current = current
        self.retry_after = retry_after

    @property
    def permanent(self) -> bool:
        """A 4xx other than 408/425/429: sending the same request again cannot succeed."""
        return 400 <= self.status < 500 and self.status not in (408, 425, 429)


class NetworkError(Exception):
    """No usable answer from the server."""


class WrongContentType(NetworkError):
    """The event stream came back as something else (a buffering proxy or a captive portal)."""


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


def _error_from(status: int, body: bytes, headers: httpx.Headers) -> ApiError:
    try:
        detail = p.decode(body, p.ErrorBody).error
        code, message, current = detail.code, detail.message, detail.current
    except p.ProtocolError:
        code, message, current = f"http_{status}", body[:200].decode("utf-8", "replace"), None
    return ApiError(status, code, message, current=current, retry_after=_retry_after(headers))


class ServerApi:
    """One long-lived ``httpx.AsyncClient`` bound to a server; ``transport`` is injectable."""

    def __init__(
        self,
        server_url: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_s: float = 15.0,
        heartbeat_s: float = p.HEARTBEAT_S,
    ) -> None:
        self.base = server_url.rstrip("/") + p.API_PREFIX
        self.access_token: str | None = None
        self.heartbeat_s = heartbeat_s
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(timeout_s),
            headers={"User-Agent": "concord-client"},
            limits=httpx.Limits(max_keepalive_connections=4, max_connections=8),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"} if self.access_token else {}

    async def _call(
        self,
        method: str,
        path: str,
        type_: type[T],
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        auth: bool = True,
        op_id: str | None = None,
    ) -> T:
        headers = self._auth() if auth else {}
        if op_id is not None:
            headers["Idempotency-Key"] = op_id
        content = None
        if body is not None:
            content = p.encode(body)
            headers["Content-Type"] = "application/json"
        try:
            resp = await self._client.request(
                method, self.base + path, content=content, headers=headers, params=params
            )
        except httpx.HTTPError as exc:
            raise NetworkError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if resp.status_code >= 400:
            raise _error_from(resp.status_code, resp.content, resp.headers)
        try:
            return p.decode(resp.content, type_)
        except p.ProtocolError as exc:
            raise NetworkError(f"{method} {path}: unexpected answer: {exc}") from exc

    # --- auth
    async def sign_in(self, username: str, password: str) -> p.TokenResponse:
        req = p.TokenRequest(username, password)
        return await self._call("POST", "/auth/token", p.TokenResponse, body=req, auth=False)

    async def refresh(self, refresh_token: str) -> p.RefreshResponse:
        req = p.RefreshRequest(refresh_token)
        return await self._call("POST", "/auth/refresh", p.RefreshResponse, body=req, auth=False)

    # --- reads
    async def snapshot(self, messages: int = 0) -> p.Snapshot:
        return await self._call("GET", "/snapshot", p.Snapshot, params={"messages": messages})

    async def changes(self, since: str, limit: int = 500) -> p.ChangePage:
        params = {"since": since, "limit": limit}
        return await self._call("GET", "/changes", p.ChangePage, params=params)

    async def messages(
        self, conversation_id: str, before: int | None = None, limit: int = 50
    ) -> p.MessagePage:
        params: dict[str, Any] = {"limit": limit}
        if before is not None:
            params["before"] = before
        path = f"/conversations/{conversation_id}/messages"
        return await self._call("GET", path, p.MessagePage, params=params)

    # --- writes
    async def create_conversation(self, req: p.ConversationCreate) -> p.ConversationResult:
        return await self._call("POST", "/conversations", p.ConversationResult, body=req)

    async def patch_conversation(
        self, conversation_id: str, req: p.ConversationPatch, op_id: str | None = None
    ) -> p.ConversationResult:
        """``op_id`` goes out as ``Idempotency-Key``: a retry gets the first answer, not a 409."""
        path = f"/conversations/{conversation_id}"
        return await self._call("PATCH", path, p.ConversationResult, body=req, op_id=op_id)

    async def delete_conversation(
        self, conversation_id: str, base_version: int, op_id: str | None = None
    ) -> p.DeleteResult:
        path = f"/conversations/{conversation_id}"
        params = {"base_version": base_version}
        return await self._call("DELETE", path, p.DeleteResult, params=params, op_id=op_id)

    async def send_message(self, conversation_id: str, req: p.MessageCreate) -> p.MessageResult:
        path = f"/conversations/{conversation_id}/messages"
        return await self._call("POST", path, p.MessageResult, body=req)

    async def mark_read(self, conversation_id: str, seq: int) -> p.ReadResult:
        path = f"/conversations/{conversation_id}/read"
        return await self._call("POST", path, p.ReadResult, body=p.ReadRequest(seq))

    # --- the change feed as a stream
    async def events(
        self, last_event_id: str | None = None
    ) -> AsyncGenerator[ServerSentEvent, None]:
        """The SSE feed; the read timeout is 3 heartbeats, so a silent dead link is noticed."""
        timeout = httpx.Timeout(15.0, read=3 * self.heartbeat_s)
        events = stream_events(
            self._client,
            self.base + "/events",
            last_event_id=last_event_id,
            headers=self._auth(),
            timeout=timeout,
        )
        try:
            async with contextlib.aclosing(events):  # closed here, not by the GC after the loop
                async for event in events:
                    yield event
        except SSEResponseError as exc:
            if exc.status >= 400:
                raise _error_from(exc.status, exc.body, httpx.Headers()) from None
            if exc.status == 204:
                raise ApiError(204, "no_content", "the server asked not to reconnect") from None
            raise WrongContentType(str(exc)) from None
        except httpx.HTTPError as exc:
            raise NetworkError(f"events: {type(exc).__name__}: {exc}") from exc
