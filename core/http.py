"""The sync server's API as typed coroutines. The only module of the client that imports httpx
(docs/architecture.md §1): a switch to an httpx fork is a change to this file alone.

Every failure is one of two exceptions: :class:`ApiError` (the server answered with an error
status; ``.status``/``.code`` say which) or :class:`NetworkError` (no usable answer: refused,
reset, timed out, not JSON, or not what the protocol says). A request that needs a token and
cannot get one raises :class:`core._policy.SignInRequired`.

:class:`TokenAuth` (an ``httpx.Auth``) owns the session's tokens and signs the requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from . import protocol as p
from ._policy import SignInRequired
from .signal import Signal
from .sse import ServerSentEvent, SSEResponseError, stream_events

if TYPE_CHECKING:  # credentials imports NetworkError from here
    from .credentials import Credentials

log = logging.getLogger(__name__)

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
        self.auth: TokenAuth | None = None  # set by the TokenAuth made for this api
        self.heartbeat_s = heartbeat_s
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(timeout_s),
            headers={"User-Agent": "concord-client"},
            limits=httpx.Limits(max_keepalive_connections=4, max_connections=8),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

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
        headers: dict[str, str] = {}
        if op_id is not None:
            headers["Idempotency-Key"] = op_id
        content = None
        if body is not None:
            content = p.encode(body)
            headers["Content-Type"] = "application/json"
        try:
            resp = await self._client.request(
                method,
                self.base + path,
                content=content,
                headers=headers,
                params=params,
                auth=self.auth if auth else None,
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

    async def logout(self, everywhere: bool = False) -> p.LogoutResult:
        """End this session (``auth/logout``) or every session of the user (``auth/logout-all``)."""
        path = "/auth/logout-all" if everywhere else "/auth/logout"
        return await self._call("POST", path, p.LogoutResult)

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

    async def search(
        self, query: str, before: int | None = None, limit: int = p.SEARCH_DEFAULT_LIMIT
    ) -> p.SearchPage:
        """The caller's messages matching ``query``, newest first (``GET search``)."""
        params: dict[str, Any] = {"q": query, "limit": limit}
        if before is not None:
            params["before"] = before
        return await self._call("GET", "/search", p.SearchPage, params=params)

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

    async def edit_message(
        self, conversation_id: str, message_id: str, req: p.MessagePatch, op_id: str | None = None
    ) -> p.MessageResult:
        path = f"/conversations/{conversation_id}/messages/{message_id}"
        return await self._call("PATCH", path, p.MessageResult, body=req, op_id=op_id)

    async def delete_message(
        self, conversation_id: str, message_id: str, op_id: str | None = None
    ) -> p.DeleteResult:
        """Deleted whatever its version (the author's delete of their own message)."""
        path = f"/conversations/{conversation_id}/messages/{message_id}"
        return await self._call("DELETE", path, p.DeleteResult, op_id=op_id)

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
            headers=self.auth.headers() if self.auth else {},
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


class TokenAuth(httpx.Auth):
    """The session's tokens, and the ``httpx.Auth`` that signs ``api``'s requests with them.

    The one owner of the access token (in memory), the refresh token (kept by ``credentials``:
    the keyring, or minted by the embedded server) and a password the client was given. Every
    request of ``api`` except ``auth/*`` gets a token first and, answered ``401``, is sent once
    more after one refresh. ``sign_in_required`` fires (and :class:`SignInRequired` is raised)
    only when the server refused a fresh token. The event stream only carries the header: the
    engine answers its ``401`` itself (docs/architecture.md §5.3).

    Refresh tokens rotate: one refresh at a time (callers meanwhile share its outcome), each
    successor saved before its access token is used (docs/architecture.md §5.10).
    """

    def __init__(self, api: ServerApi, credentials: Credentials, *, username: str) -> None:
        self.api = api
        self.credentials = credentials
        self.username = username
        self.access_token: str | None = None  # None: the next request refreshes first
        self.password: str | None = None  # given to the client (tests, scripts): used again
        self.sign_in_required: Signal[[]] = Signal("sign_in_required")
        self._need_sign_in = False  # the server refused us even with fresh tokens
        self._signed_in = asyncio.Event()
        self._refreshing: asyncio.Task[None] | None = None  # the one refresh in flight
        self._epoch = 0  # a sign-in or a revoke: a refresh begun before it is outdated
        api.auth = self  # signs every request of ``api`` from now on

    # --- httpx.Auth ------------------------------------------------------------------------------

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """A token first; a ``401`` is answered with one refresh and the request sent again
        (a refused refresh signs out and raises :class:`SignInRequired`)."""
        await self.ensure_token()
        sent = self.access_token
        request.headers.update(self.headers())
        response = yield request
        if response.status_code != 401:
            return
        await response.aread()  # read before refreshing, as a refused request always was
        try:
            await self.refresh_access(stale=sent)
        except SignInRequired:
            self.signed_out()
            raise
        request.headers.update(self.headers())
        yield request

    def headers(self) -> dict[str, str]:
        """The ``Authorization`` header for the current access token (none without one)."""
        return {"Authorization": f"Bearer {self.access_token}"} if self.access_token else {}

    # --- state -----------------------------------------------------------------------------------

    @property
    def signed_in(self) -> bool:
        """Whether the session holds a token the server gave (cleared on "sign-in required")."""
        return self._signed_in.is_set()

    async def wait_signed_in(self) -> None:
        await self._signed_in.wait()

    @property
    def mints(self) -> bool:
        """Refresh tokens are minted by the embedded server: a refused one is minted again."""
        return self.credentials.mints

    # --- sign-in and refresh ---------------------------------------------------------------------

    async def sign_in(self, password: str) -> None:
        tokens = await self.api.sign_in(self.username, password)
        self._epoch += 1
        self._need_sign_in = False
        await self.credentials.save_refresh_token(tokens.refresh_token)
        self._use_access(tokens.access_token, tokens.expires_at)

    async def _sign_in_again(self, password: str) -> None:
        try:
            await self.sign_in(password)
        except ApiError as exc:
            if exc.status in (400, 401, 403, 422):
                raise SignInRequired(exc.message) from None
            raise

    def _use_access(self, token: str, expires_at: int) -> None:
        self.access_token = token
        self.credentials.access_token = token
        self.credentials.access_expires_at = expires_at
        self._signed_in.set()

    async def refresh_access(self, stale: str | None = None) -> None:
        """A new access token from the refresh token; SignInRequired when that is refused
        (a minted token that is refused is minted once more first) or after a sign-out.

        One refresh at a time: a caller that comes while one is in flight waits for it and
        shares its outcome, so a rotated token is never presented twice. ``stale``: the access
        token the caller was refused with; already replaced, nothing is refreshed. A refresh
        whose answer was lost leaves the old token in place, and the next one presents it again
        (the server's grace window answers that with the same successor)."""
        if self._need_sign_in:
            raise SignInRequired("signed out")
        if stale is not None and self.access_token not in (None, stale):
            return  # refreshed by another caller since the refused request was signed
        if self._refreshing is None:
            self._refreshing = asyncio.create_task(self._refresh(self._epoch), name="refresh")
            self._refreshing.add_done_callback(self._refresh_done)
        await asyncio.shield(self._refreshing)  # a cancelled caller does not lose the successor

    def _refresh_done(self, task: asyncio.Task[None]) -> None:
        if self._refreshing is task:
            self._refreshing = None
        if not task.cancelled():
            task.exception()  # its callers were told; no "never retrieved" when none is left

    async def _refresh(self, epoch: int) -> None:
        refused = "refused"
        for _ in range(2 if self.credentials.mints else 1):
            refresh = await self.credentials.refresh_token()
            if not refresh and self.password:  # no keyring, a new leader: sign in again
                await self._sign_in_again(self.password)
                return
            if not refresh:
                raise SignInRequired("no refresh token")
            try:
                tokens = await self.api.refresh(refresh)
            except ApiError as exc:
                if exc.status not in (400, 401, 403, 422):
                    raise
                if self._outdated(epoch):
                    return
                await self.credentials.forget()
                self.password = None  # signed out by the server: only the user signs in again
                refused = exc.message
                continue
            if self._outdated(epoch):
                return
            if tokens.refresh_token:  # rotated: kept before the access token is used
                await self.credentials.save_refresh_token(tokens.refresh_token)
            self._use_access(tokens.access_token, tokens.expires_at)
            return
        if self.credentials.mints:  # our own local server refuses what it minted: not ready yet
            raise NetworkError(f"the local server refused a fresh token: {refused}")
        raise SignInRequired(refused)

    def _outdated(self, epoch: int) -> bool:
        """A sign-in or a revoke came while this refresh was out: its answer is not used (the
        new session's tokens stand, or the revoked session stays signed out)."""
        if epoch == self._epoch:
            return False
        if self._need_sign_in:
            raise SignInRequired("signed out")
        return True

    async def ensure_token(self) -> None:
        """An access token, refreshed if there is none; SignInRequired when that fails."""
        if self.access_token:
            return
        try:
            if self._need_sign_in:
                raise SignInRequired("signed out")
            await self.refresh_access()
        except SignInRequired:
            self._signed_in.clear()
            self.sign_in_required.emit()
            raise

    async def reauth(self) -> None:
        """The server's ``reauth`` event: refresh ahead of expiry; a failure is only logged
        (the request or stream that meets the expired token refreshes again)."""
        try:
            await self.refresh_access()
        except (SignInRequired, ApiError, NetworkError) as exc:
            log.info("reauth failed: %s", exc)

    async def revoke(self, everywhere: bool = False) -> p.LogoutResult:
        """Sign out at the server: this session (``auth/logout``), or every session of the user
        (``everywhere``, ``auth/logout-all``). Afterwards nothing refreshes and every request
        raises :class:`SignInRequired` until :meth:`sign_in`; the keyring entry stays until
        ``credentials.forget()``. Raises like any request (nothing changes then);
        :class:`SignInRequired` when there is no session left to end."""
        if self._refreshing is not None:  # let a rotation in flight land first
            with contextlib.suppress(Exception):
                await asyncio.shield(self._refreshing)
        result = await self.api.logout(everywhere)
        self._epoch += 1
        self._need_sign_in = True
        self.access_token = self.credentials.access_token = None
        self.password = None
        self._signed_in.clear()
        return result

    def signed_out(self) -> None:
        """The server refused a fresh token: wait for the user to sign in."""
        self._need_sign_in = True
        self.access_token = None
        self._signed_in.clear()
        self.sign_in_required.emit()
