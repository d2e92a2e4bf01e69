"""The REST endpoints of ``/api/v1`` (the SSE feed is in :mod:`server.stream`)."""

from __future__ import annotations

import logging
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from core import protocol as p

from . import __version__
from .auth import check_password, now_ms
from .context import context
from .errors import RequestRejected
from .metrics import scrape_allowed
from .storage import Rotated

T = TypeVar("T")
log = logging.getLogger(__name__)


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(p.encode(obj), status_code=status, media_type="application/json")


async def read_body(request: Request, type_: type[T]) -> T:
    """Read at most 1 MiB and decode it strictly as ``type_``."""
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise RequestRejected(400, "invalid_request", "bad Content-Length")
        if int(length) > p.MAX_REQUEST_BYTES:
            raise RequestRejected(413, "payload_too_large", "request body over 1 MiB")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > p.MAX_REQUEST_BYTES:
            raise RequestRejected(413, "payload_too_large", "request body over 1 MiB")
        chunks.append(chunk)
    data = b"".join(chunks)
    if not data:
        raise RequestRejected(400, "invalid_json", "a JSON body is required")
    try:
        return p.decode_request(data, type_)
    except p.MalformedError as exc:
        raise RequestRejected(400, "invalid_json", str(exc)) from None
    except p.ProtocolError as exc:
        # A typed decode stops at the first schema error, which may come before the syntax
        # error ('{}garbage'): malformed JSON must be 400 wherever its first fault lies.
        try:
            msgspec.json.decode(data)
        except (msgspec.DecodeError, UnicodeDecodeError) as malformed:
            raise RequestRejected(400, "invalid_json", f"malformed JSON: {malformed}") from None
        except RecursionError:
            raise RequestRejected(400, "invalid_json", "JSON nested too deeply") from None
        raise RequestRejected(422, "invalid_request", str(exc)) from None


def _clean_title(title: str) -> str:
    cleaned = title.strip()
    if not cleaned:
        raise RequestRejected(422, "invalid_request", "title must not be blank")
    return cleaned


def _conversation_id(request: Request) -> str:
    cid: str = request.path_params["conversation_id"]
    if not p.UUID_RE.match(cid):
        raise RequestRejected(404, "not_found", "no such conversation")
    return cid.lower()


def _idempotency_key(request: Request) -> str | None:
    """``Idempotency-Key``: 1 to 128 visible ASCII characters (the outbox sends a UUID)."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not p.IDEMPOTENCY_KEY_RE.fullmatch(key):
        raise RequestRejected(
            400, "invalid_idempotency_key", "Idempotency-Key: 1-128 visible ASCII"
        )
    return key


def _int_param(request: Request, name: str, default: int | None, lo: int, hi: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19:
        raise RequestRejected(400, "invalid_parameter", f"{name} must be a non-negative integer")
    value = int(raw)
    if not lo <= value <= hi:
        raise RequestRejected(400, "invalid_parameter", f"{name} must be between {lo} and {hi}")
    return value


# --- auth -------------------------------------------------------------------------------------


async def token(request: Request) -> Response:
    ctx = context(request)
    req = await read_body(request, p.TokenRequest)
    reservation, pair = await ctx.sign_in.reserve(request, req.username)  # before the check
    ctx.metrics.password_checks.inc()
    user_id = await check_password(ctx.storage, req.username, req.password)
    if user_id is None:
        raise RequestRejected(401, "invalid_credentials", "wrong username or password")
    await ctx.sign_in.succeeded(reservation, pair)
    issued = await ctx.tokens.sign_in(user_id, req.username)
    return json_response(
        p.TokenResponse(issued.access, issued.refresh, issued.access_expires_at, req.username)
    )


async def refresh(request: Request) -> Response:
    """Rotate: the sent refresh token is spent, its successor comes back (§4.9)."""
    ctx = context(request)
    req = await read_body(request, p.RefreshRequest)
    outcome, issued = await ctx.tokens.refresh(req.refresh_token)
    ctx.metrics.refreshes.labels(outcome.value).inc()
    if outcome is Rotated.REUSED:
        log.warning("a spent refresh token was presented again: its session is revoked")
    if issued is None:
        raise RequestRejected(
            401, "invalid_token", "the refresh token is unknown, expired, spent or revoked"
        )
    return json_response(
        p.RefreshResponse(
            issued.access,
            issued.access_expires_at,
            refresh_token=issued.refresh,
            refresh_expires_at=issued.refresh_expires_at,
        )
    )


async def logout(request: Request) -> Response:
    """End this session: its refresh token, access tokens and open streams."""
    ctx = context(request)
    user = await ctx.tokens.authenticate(request)
    ended = await ctx.tokens.revoke(user.user_id, user.session or None)
    return json_response(p.LogoutResult(ended))


async def logout_all(request: Request) -> Response:
    """Sign out everywhere: every session of the caller."""
    ctx = context(request)
    user = await ctx.tokens.authenticate(request)
    ended = await ctx.tokens.revoke(user.user_id, None)
    return json_response(p.LogoutResult(ended))


# --- reads --------------------------------------------------------------------------------------


async def health(request: Request) -> Response:
    ctx = context(request)
    return json_response(p.Health("ok", __version__, ctx.storage.epoch))


async def metrics(request: Request) -> Response:
    ctx = context(request)
    scrape_allowed(request, ctx.settings.metrics_token)
    return Response(ctx.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


async def changes(request: Request) -> Response:
    ctx = context(request)
    user = await ctx.tokens.authenticate(request)
    limit = _int_param(request, "limit", 500, 1, p.MAX_PAGE) or 500
    raw = request.query_params.get("since") or "0"  # empty: no cursor, as when absent
    try:
        epoch, since = parse_cursor(raw, ctx.storage.epoch)
    except p.ProtocolError as exc:
        raise RequestRejected(400, "invalid_cursor", str(exc)) from None
    state = await ctx.storage.feed_state(user.user_id)
    reason = cursor_problem(epoch, since, ctx.storage.epoch, state.head, state.min_retained)
    if reason:
        raise RequestRejected(410, reason, "the cursor cannot be resumed; do a full sync")
    rows = await ctx.storage.changes_since(user.user_id, since, limit)
    page = _StoredChangePage(
        epoch=ctx.storage.epoch,
        head=max(state.head, rows[-1].seq if rows else 0),
        min_retained=state.min_retained,
        changes=[msgspec.Raw(r.payload) for r in rows],
        has_more=len(rows) == limit,
    )
    return json_response(page)


class _StoredChangePage(msgspec.Struct):
    """Encodes exactly as :class:`p.ChangePage`, splicing the stored change JSON as is."""

    epoch: int
    head: int
    min_retained: int
    changes: list[msgspec.Raw]
    has_more: bool


async def snapshot(request: Request) -> Response:
    ctx = context(request)
    user = await ctx.tokens.authenticate(request)
    per_conv = _int_param(request, "messages", 0, 0, p.MAX_SNAPSHOT_MESSAGES) or 0
    return json_response(await ctx.storage.snapshot(user.user_id, per_conv))


async def list_conversations(request: Request) -> Response:
    ctx = context(request)
    user = await ctx.tokens.authenticate(request)
    return json_response(await ctx.storage.list_conversations(user.user_id))


async def list_messages(request: Request) -> Response:
    ctx = context(request)
    user = await ctx.tokens.authenticate(request)
    cid = _conversation_id(request)
    before = _int_param(request, "before", None, 1, p.MAX_INT)
    limit = _int_param(request, "limit", 50, 1, p.MAX_PAGE) or 50
    return json_response(await ctx.storage.messages_page(user.user_id, cid, before, limit))


async def search(request: Request) -> Response:
    """The caller's messages matching ``q`` (every word, the last as a prefix), newest first."""
    ctx = context(request)
    user = await ctx.tokens.authenticate(request)
    q = request.query_params.get("q", "")
    if not q.strip():
        raise RequestRejected(400, "invalid_parameter", "q must not be blank")
    if len(q) > p.SEARCH_MAX_QUERY:
        raise RequestRejected(
            400, "invalid_parameter", f"q is at most {p.SEARCH_MAX_QUERY} characters"
        )
    before = _int_param(request, "before", None, 1, p.MAX_INT)
    default = p.SEARCH_DEFAULT_LIMIT
    limit = _int_param(request, "limit", default, 1, p.SEARCH_MAX_LIMIT) or default
    terms = p.search_terms(q)
    return json_response(await ctx.storage.search_messages(user.user_id, terms, before, limit))


# --- writes -------------------------------------------------------------------------------------


async def create_conversation(request: Request) -> Response:
    ctx = context(request)
    user = await ctx.tokens.authenticate(request)
    req = await read_body(request, p.ConversationCreate)
    req.title = _clean_title(req.title)
    result = ctx.committed(await ctx.storage.create_conversation(user.user_id, req, now_ms()))
    return json_response(result, 201)


async def patch_conversation(request: Request) -> Response:
    ctx = context(request)
    user = await ctx.tokens.authenticate(request)
    cid = _conversation_id(request)
    req = await read_body(request, p.ConversationPatch)
    if isinstance(req.title, str):
        req.title = _clean_title(req.title)
    if all(isinstance(v, msgspec.UnsetType) for v in (req.title, req.pinned, req.members)):
        raise RequestRejected(
            422, "invalid_request", "nothing to change: give title, pinned or members"
        )
    key = _idempotency_key(request)
    result = await ctx.storage.patch_conversation(user.user_id, cid, req, now_ms(), key)
    return json_response(ctx.committed(result))


async def delete_conversation(request: Request) -> Response:
    ctx = context(request)
    user = await ctx.tokens.authenticate(request)
    cid = _conversation_id(request)
    key = _idempotency_key(request)
    base = _int_param(request, "base_version", None, 1, p.MAX_INT)
    if base is None:
        has_body = request.headers.get("content-length", "0") != "0" or (
            "transfer-encoding" in request.headers
        )
        if not has_body:
            raise RequestRejected(422, "invalid_request", "base_version is required")
        base = (await read_body(request, p.ConversationDelete)).base_version
    result = await ctx.storage.delete_conversation(user.user_id, cid, base, now_ms(), key)
    return json_response(ctx.committed(result))


async def send_message(request: Request) -> Response:
    ctx = context(request)
    user = await ctx.tokens.authenticate(request)
    cid = _conversation_id(request)
    req = await read_body(request, p.MessageCreate)
    if p.body_too_long(req.body):
        raise RequestRejected(422, "invalid_request", "message body over 64 KiB")
    if not req.body.strip():
        raise RequestRejected(422, "invalid_request", "message body must not be blank")
    result = await ctx.storage.send_message(user.user_id, cid, req, now_ms())
    return json_response(ctx.committed(result), 201)


def _message_id(request: Request) -> str:
    mid: str = request.path_params["message_id"]
    if not p.UUID_RE.match(mid):
        raise RequestRejected(404, "not_found", "no such message")
    return mid.lower()


async def edit_message(request: Request) -> Response:
    """The author's new text (``base_version``: the version they edited; 409 when stale)."""
    ctx = context(request)
    user = await ctx.tokens.authenticate(request)
    cid, mid = _conversation_id(request), _message_id(request)
    req = await read_body(request, p.MessagePatch)
    if p.body_too_long(req.body):
        raise RequestRejected(422, "invalid_request", "message body over 64 KiB")
    if not req.body.strip():
        raise RequestRejected(422, "invalid_request", "message body must not be blank")
    key = _idempotency_key(request)
    result = await ctx.storage.edit_message(user.user_id, cid, mid, req, now_ms(), key)
    return json_response(ctx.committed(result))


async def delete_message(request: Request) -> Response:
    """The author deletes a message; ``base_version`` (query or JSON body) is optional."""
    ctx = context(request)
    user = await ctx.tokens.authenticate(request)
    cid, mid = _conversation_id(request), _message_id(request)
    key = _idempotency_key(request)
    base = _int_param(request, "base_version", None, 1, p.MAX_INT)
    has_body = request.headers.get("content-length", "0") != "0" or (
        "transfer-encoding" in request.headers
    )
    if base is None and has_body:
        given = (await read_body(request, p.MessageDelete)).base_version
        base = None if isinstance(given, msgspec.UnsetType) else given
    result = await ctx.storage.delete_message(user.user_id, cid, mid, base, now_ms(), key)
    return json_response(ctx.committed(result))


async def mark_read(request: Request) -> Response:
    ctx = context(request)
    user = await ctx.tokens.authenticate(request)
    cid = _conversation_id(request)
    req = await read_body(request, p.ReadRequest)
    result = await ctx.storage.mark_read(user.user_id, cid, req.seq, now_ms())
    return json_response(ctx.committed(result))


# --- cursors ------------------------------------------------------------------------------------


def parse_cursor(text: str, current_epoch: int) -> tuple[int, int]:
    """``"<epoch>:<seq>"``, or a bare ``seq`` meaning the current epoch, exactly as
    ``p.CURSOR_PATTERN`` (the OpenAPI description) says; an empty one is the caller's to skip."""
    if not text or not p.CURSOR_RE.fullmatch(text):
        raise p.ProtocolError(f"a cursor is '<epoch>:<seq>' or '<seq>', got {text[:40]!r}")
    epoch, sep, seq = text.partition(":")
    return (int(epoch), int(seq)) if sep else (current_epoch, int(text))


def cursor_problem(epoch: int, seq: int, current_epoch: int, head: int, min_retained: int) -> str:
    """Why a cursor cannot be resumed ("" when it can)."""
    if epoch != current_epoch:
        return "epoch_changed"
    if seq > head:
        return "cursor_ahead"
    if seq < min_retained - 1:
        return "cursor_expired"
    return ""
