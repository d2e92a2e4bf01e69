"""``GET /api/v1/openapi.json``: the API described from the same msgspec schemas it decodes."""

from __future__ import annotations

from typing import Any, get_args

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from core import protocol as p

from . import __version__

# (operationId, method, path, summary, request type, response type, success status, public)
ENDPOINTS: list[tuple[str, str, str, str, type | None, type | None, int, bool]] = [
    ("signIn", "post", "/auth/token", "Sign in", p.TokenRequest, p.TokenResponse, 200, True),
    (
        "refreshSession",
        "post",
        "/auth/refresh",
        "Rotate: the refresh token is spent, a new pair comes back",
        p.RefreshRequest,
        p.RefreshResponse,
        200,
        True,
    ),
    ("signOut", "post", "/auth/logout", "End this session", None, p.LogoutResult, 200, False),
    (
        "signOutEverywhere",
        "post",
        "/auth/logout-all",
        "End every session of the user",
        None,
        p.LogoutResult,
        200,
        False,
    ),
    (
        "getStreamTicket",
        "post",
        "/auth/stream-ticket",
        "A stream ticket: GET events?ticket= only (browsers' EventSource)",
        None,
        p.StreamTicket,
        200,
        False,
    ),
    (
        "streamEvents",
        "get",
        "/events",
        "SSE change feed (text/event-stream)",
        None,
        None,
        200,
        False,
    ),
    ("getChanges", "get", "/changes", "Pull the change feed", None, p.ChangePage, 200, False),
    ("getSnapshot", "get", "/snapshot", "Full state for a full sync", None, p.Snapshot, 200, False),
    (
        "listConversations",
        "get",
        "/conversations",
        "List conversations",
        None,
        p.ConversationList,
        200,
        False,
    ),
    (
        "createConversation",
        "post",
        "/conversations",
        "Create (idempotent)",
        p.ConversationCreate,
        p.ConversationResult,
        201,
        False,
    ),
    (
        "updateConversation",
        "patch",
        "/conversations/{conversation_id}",
        "Rename, pin, set members",
        p.ConversationPatch,
        p.ConversationResult,
        200,
        False,
    ),
    (
        "deleteConversation",
        "delete",
        "/conversations/{conversation_id}",
        "Delete (tombstone)",
        p.ConversationDelete,
        p.DeleteResult,
        200,
        False,
    ),
    (
        "listMessages",
        "get",
        "/conversations/{conversation_id}/messages",
        "Page of messages",
        None,
        p.MessagePage,
        200,
        False,
    ),
    (
        "sendMessage",
        "post",
        "/conversations/{conversation_id}/messages",
        "Send (idempotent)",
        p.MessageCreate,
        p.MessageResult,
        201,
        False,
    ),
    (
        "editMessage",
        "patch",
        "/conversations/{conversation_id}/messages/{message_id}",
        "Edit (author only; idempotent with Idempotency-Key)",
        p.MessagePatch,
        p.MessageResult,
        200,
        False,
    ),
    (
        "deleteMessage",
        "delete",
        "/conversations/{conversation_id}/messages/{message_id}",
        "Delete (author only; text erased, tombstone in the feed)",
        p.MessageDelete,
        p.DeleteResult,
        200,
        False,
    ),
    (
        "markRead",
        "post",
        "/conversations/{conversation_id}/read",
        "Mark read",
        p.ReadRequest,
        p.ReadResult,
        200,
        False,
    ),
    (
        "searchMessages",
        "get",
        "/search",
        "Search the caller's messages (every word, the last as a prefix; newest first)",
        None,
        p.SearchPage,
        200,
        False,
    ),
    ("getHealth", "get", "/health", "Liveness", None, p.Health, 200, True),
    (
        "getMetrics",
        "get",
        "/metrics",
        "Prometheus metrics (text): the scrape token; with none configured, loopback only",
        None,
        None,
        200,
        False,
    ),
]


def _int(lo: int, hi: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": lo, "maximum": hi}


# A cursor: "<epoch>:<seq>", or a bare seq meaning the current epoch; empty is the same as absent.
_SINCE = {"type": "string", "pattern": p.CURSOR_PATTERN}
_BEFORE = _int(1, p.MAX_INT)
_Q = {"type": "string", "maxLength": p.SEARCH_MAX_QUERY, "pattern": p.NOT_BLANK_PATTERN}

# Query parameters by path: (name, schema, required). Every bound here is one the server checks.
QUERY: dict[str, list[tuple[str, dict[str, Any], bool]]] = {
    "/events": [("since", _SINCE, False)],
    "/changes": [("since", _SINCE, False), ("limit", _int(1, p.MAX_PAGE), False)],
    "/snapshot": [("messages", _int(0, p.MAX_SNAPSHOT_MESSAGES), False)],
    "/conversations/{conversation_id}/messages": [
        ("before", _BEFORE, False),
        ("limit", _int(1, p.MAX_PAGE), False),
    ],
    "/search": [
        ("q", _Q, True),
        ("before", _BEFORE, False),
        ("limit", _int(1, p.SEARCH_MAX_LIMIT), False),
    ],
}


# OpenAPI links: what a success answer of an operation feeds into a next request, so that a
# client (and schemathesis's stateful tests) can chain them. By source operationId: (link name,
# target operationId, where the answer's values go). A target is ``path.<name>`` (a path
# parameter) or ``body.<field>`` (merged into the request body); a value is a JSON pointer into
# the answer's body. A link's ``requestBody`` is then an object of runtime expressions: OpenAPI
# 3.0 allows a literal or one expression there, and reading expressions inside an object is
# schemathesis's (and a human reader's) convention, not every tool's.
_CONV = {"path.conversation_id": "/conversation/id", "body.base_version": "/conversation/version"}
_IN_CONV = {"path.conversation_id": "/conversation/id"}
_MSG = {
    "path.conversation_id": "/message/conversation_id",
    "path.message_id": "/message/id",
    "body.base_version": "/message/version",
}
_FOLLOW_CONVERSATION = [
    ("RenameOrPin", "updateConversation", _CONV),
    ("Delete", "deleteConversation", _CONV),
    ("Send", "sendMessage", _IN_CONV),
    ("ReadMessages", "listMessages", _IN_CONV),
    ("MarkRead", "markRead", {**_IN_CONV, "body.seq": "/conversation/last_seq"}),
]
_FOLLOW_MESSAGE = [
    ("Edit", "editMessage", _MSG),
    ("Delete", "deleteMessage", _MSG),
    (
        "MarkRead",
        "markRead",
        {"path.conversation_id": "/message/conversation_id", "body.seq": "/message/seq"},
    ),
    ("ReadMessages", "listMessages", {"path.conversation_id": "/message/conversation_id"}),
]
_ROTATE = [("Refresh", "refreshSession", {"body.refresh_token": "/refresh_token"})]
LINKS: dict[str, list[tuple[str, str, dict[str, str]]]] = {
    "signIn": _ROTATE,
    "refreshSession": _ROTATE,  # the spent token is refused: the new one must be used
    "createConversation": _FOLLOW_CONVERSATION,
    "updateConversation": _FOLLOW_CONVERSATION,  # the new version answers the next PATCH
    "sendMessage": _FOLLOW_MESSAGE,
    "editMessage": _FOLLOW_MESSAGE,
}


def links(op_id: str) -> dict[str, Any]:
    """The ``links`` of ``op_id``'s success response, as OpenAPI runtime expressions."""
    out: dict[str, Any] = {}
    for name, target, values in LINKS[op_id]:
        link: dict[str, Any] = {"operationId": target}
        for where, pointer in values.items():
            kind, field = where.split(".", 1)
            assert kind in ("path", "body"), where
            expression = f"$response.body#{pointer}"
            if kind == "path":
                link.setdefault("parameters", {})[where] = expression
            else:
                link.setdefault("requestBody", {})[field] = expression
        out[name] = link
    return out


def build() -> dict[str, Any]:
    types = {t for e in ENDPOINTS for t in (e[4], e[5]) if t is not None} | {p.ErrorBody}
    types |= set(get_args(p.ChangeData))  # what a change's ``data`` holds, by kind
    _, components = msgspec.json.schema_components(
        sorted(types, key=lambda t: t.__name__), ref_template="#/components/schemas/{name}"
    )

    # A PATCH of a conversation changes something: base_version and at least one field.
    components["ConversationPatch"]["anyOf"] = [
        {"required": [field]} for field in ("title", "pinned", "members")
    ]

    def ref(t: type) -> dict[str, str]:
        return {"$ref": f"#/components/schemas/{t.__name__}"}

    error = {"description": "Error", "content": {"application/json": {"schema": ref(p.ErrorBody)}}}
    paths: dict[str, dict[str, Any]] = {}
    for op_id, method, path, summary, req, resp, status, public in ENDPOINTS:
        op: dict[str, Any] = {
            "operationId": op_id,
            "summary": summary,
            "responses": {"4XX": error},
        }
        if path == "/changes":
            op["responses"]["410"] = {
                **error,
                "description": "The cursor cannot be resumed (cursor_expired, epoch_changed, "
                "cursor_ahead): do a full sync",
            }
        params = [
            {"name": name, "in": "query", "required": required, "schema": schema}
            for name, schema, required in QUERY.get(path, [])
            if method == "get"
        ]
        if "{conversation_id}" in path:
            params.append(
                {
                    "name": "conversation_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "format": "uuid"},
                }
            )
        if "{message_id}" in path:
            params.append(
                {
                    "name": "message_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "format": "uuid"},
                }
            )
        if method in ("patch", "delete"):
            params.append(
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "description": "a retry with the same key returns the first answer",
                    "schema": {"type": "string", "minLength": 1, "maxLength": 128},
                }
            )
        if params:
            op["parameters"] = params
        if req is not None:
            op["requestBody"] = {
                "required": req is not p.MessageDelete,  # base_version is optional there
                "content": {"application/json": {"schema": ref(req)}},
            }
        content = (
            {"application/json": {"schema": ref(resp)}}
            if resp is not None
            else {"text/event-stream" if path == "/events" else "text/plain": {}}
        )
        op["responses"][str(status)] = {"description": "OK", "content": content}
        if op_id in LINKS:
            op["responses"][str(status)]["links"] = links(op_id)
        if not public:
            op["security"] = [{"bearer": []}]
        if path == "/events":  # browsers: a stream ticket in the query instead
            op["security"] = [{"bearer": []}, {"ticket": []}]
        if path == "/metrics":  # not a user's token; none at all from loopback without one
            op["security"] = [{"scrape": []}, {}]
        paths.setdefault(p.API_PREFIX + path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Concord sync server", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "ticket": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "ticket",
                    "description": "from POST auth/stream-ticket; accepted on GET events only",
                },
                "scrape": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "the server's --metrics-token (CONCORD_METRICS_TOKEN)",
                },
            },
        },
    }


_DOC: bytes | None = None


async def endpoint(_request: Request) -> Response:
    global _DOC
    if _DOC is None:
        _DOC = msgspec.json.encode(build())
    return Response(_DOC, media_type="application/json")
