"""Wire schemas shared by the sync server and the client (docs/architecture.md §4).

Everything on the wire is JSON. Missing required fields and wrong types are always errors
(``decode`` raises :class:`ProtocolError`). Unknown fields depend on the direction:

* what the server decodes (requests: :class:`_Strict`) is strict: an unknown field is a client
  mistake, answered 422;
* what the client decodes (responses, stream events, change data: :class:`_Open`) ignores them:
  a newer server may add fields, and an older app must keep working against it. For the same
  reason ``Change.kind`` is any string: the client passes over a kind it does not know (the
  cursor still moves past it).

Timestamps are integer milliseconds since the Unix epoch, always taken from the server's clock.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, get_args

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from . import wire_codec as _wire_codec
from . import wire_text as _wire_text

# JSON encoding and decoding live in core.wire_codec, the wire's text formats (event ids,
# search words) in core.wire_text; both re-exported here.
MalformedError = _wire_codec.MalformedError
encode = _wire_codec.encode
decode = _wire_codec.decode
decode_request = _wire_codec.decode_request
ProtocolError = _wire_text.ProtocolError
format_event_id = _wire_text.format_event_id
parse_event_id = _wire_text.parse_event_id
search_terms = _wire_text.search_terms
well_formed = _wire_text.well_formed
SEARCH_MAX_QUERY = _wire_text.SEARCH_MAX_QUERY
SEARCH_MAX_TERMS = _wire_text.SEARCH_MAX_TERMS
SEARCH_DEFAULT_LIMIT = _wire_text.SEARCH_DEFAULT_LIMIT
SEARCH_MAX_LIMIT = _wire_text.SEARCH_MAX_LIMIT

API_PREFIX = "/api/v1"

MAX_TITLE_CHARS = 200
MAX_BODY_BYTES = 64 * 1024
MAX_REQUEST_BYTES = 1024 * 1024
MAX_MEMBERS = 1000
HEARTBEAT_S = 15.0
DEFAULT_RETRY_MS = 2000
MAX_PAGE = 500
MAX_SNAPSHOT_MESSAGES = 200  # ``GET snapshot?messages=``

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
USERNAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"

# ``?since=``: "<epoch>:<seq>", or a bare seq meaning the current epoch (empty: no cursor).
CURSOR_PATTERN = r"^([0-9]{1,18}(:[0-9]{1,18})?)?$"

UUID_RE = re.compile(UUID_PATTERN)
CURSOR_RE = re.compile(CURSOR_PATTERN)  # use fullmatch
IDEMPOTENCY_KEY_RE = re.compile(r"[!-~]{1,128}")  # use fullmatch

# Integers on the wire: at most 2^62 (SQLite's are 64-bit). A request may write one as a
# whole-number float (``5.0``, ``1e3``): JSON Schema's ``integer`` admits it (decode_request).
MAX_INT = 2**62
# Not blank: a character that ``str.strip()`` keeps. Python's whitespace, spelled so that
# Python's ``re`` and the ECMA-262 regexes of JSON Schema read it alike; the description only
# (``extra_json_schema``): the server's own check says "must not be blank" in words.
NOT_BLANK_PATTERN = r"[^\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"

# The lengths as well: Python's ``$`` also matches before a final "\n", JSON Schema's does not.
Uuid = Annotated[str, Meta(pattern=UUID_PATTERN, min_length=36, max_length=36)]
Username = Annotated[str, Meta(pattern=USERNAME_PATTERN)]
Title = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=MAX_TITLE_CHARS,
        extra_json_schema={"pattern": NOT_BLANK_PATTERN, "description": "not blank"},
    ),
]
Body = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=MAX_BODY_BYTES,
        extra_json_schema={
            "pattern": NOT_BLANK_PATTERN,
            "description": "not blank; at most 64 KiB once encoded as UTF-8",
        },
    ),
]
Seq = Annotated[int, Meta(ge=0, le=MAX_INT)]
Version = Annotated[int, Meta(ge=1, le=MAX_INT)]

ChangeKind = Literal[
    "conversation.upserted",
    "conversation.deleted",
    "message.created",
    "conversation.read",
    "message.updated",
    "message.deleted",
]
CHANGE_KINDS: tuple[str, ...] = get_args(ChangeKind)


class _Strict(Struct, forbid_unknown_fields=True, omit_defaults=False):
    """A request body: the server refuses fields it does not know."""


class _Open(Struct, omit_defaults=False):
    """Sent by the server: a field a newer server added is ignored by an older client."""


# --- entities -------------------------------------------------------------------------------


class Conversation(_Open):
    """A conversation as one member sees it (``read_seq``/``unread`` are that member's)."""

    id: str
    title: str
    pinned: bool
    version: int
    creator: str
    members: list[str]
    created_at: int
    updated_at: int
    message_count: int  # the messages that exist (deleted ones are not counted)
    read_seq: int
    unread: int  # other members' messages after ``read_seq`` that exist
    last_seq: int = 0  # the highest message seq ever given (seqs are never reused)


class Message(_Open):
    id: str
    conversation_id: str
    seq: int
    author: str
    body: str
    created_at: int
    version: int = 1  # one more with each edit (and the delete)
    edited_at: int | None = None  # when its body was last edited; None: never
    deleted: bool = False  # a tombstone: its body is erased


class Change(_Open):
    """One row of a user's change feed. ``data`` is kind-specific: see :func:`change_data`.
    ``kind`` is one of :data:`CHANGE_KINDS` from this server; a client skips others."""

    seq: int
    kind: Annotated[
        str,
        Meta(description="one of: " + ", ".join(CHANGE_KINDS) + "; clients skip other kinds"),
    ]
    entity_id: str
    version: int
    data: msgspec.Raw
    ts: int


class ConversationDeleted(_Open):
    id: str
    # "deleted" or "removed" (from the members); any reason means it is gone from this view.
    reason: Annotated[str, Meta(description='"deleted" or "removed"')] = "deleted"


class MessageCreated(_Open):
    message: Message
    read_seq: int
    # The receiving member's counts after it (None from a server older than message edits).
    unread: int | None = None
    message_count: int | None = None


class MessageUpdated(_Open):
    """``message.updated``: the message as edited (its new body, version and ``edited_at``)."""

    message: Message


class MessageDeleted(_Open):
    """``message.deleted``: a tombstone; the receiving member's counts after the delete."""

    id: str
    conversation_id: str
    seq: int
    message_count: int
    read_seq: int
    unread: int


class ConversationRead(_Open):
    conversation_id: str
    read_seq: int
    unread: int


_CHANGE_DATA: dict[str, type] = {
    "conversation.upserted": Conversation,
    "conversation.deleted": ConversationDeleted,
    "message.created": MessageCreated,
    "conversation.read": ConversationRead,
    "message.updated": MessageUpdated,
    "message.deleted": MessageDeleted,
}

ChangeData = (
    Conversation
    | ConversationDeleted
    | MessageCreated
    | ConversationRead
    | MessageUpdated
    | MessageDeleted
)


def change_data(change: Change) -> ChangeData:
    """Decode a change's ``data`` according to its kind (unknown fields are ignored); an
    unknown kind raises :class:`ProtocolError` (check ``kind in CHANGE_KINDS`` first)."""
    type_ = _CHANGE_DATA.get(change.kind)
    if type_ is None:
        raise ProtocolError(f"unknown change kind {change.kind[:40]!r}")
    return decode(change.data, type_)


# --- stream control events --------------------------------------------------------------------


class Hello(_Open):
    epoch: int
    head: int
    min_retained: int
    resumed: bool
    expires_at: int
    heartbeat_s: float = HEARTBEAT_S


class Reset(_Open):
    reason: str
    head: int = 0


class Reauth(_Open):
    expires_at: int


class Bye(_Open):
    reason: str = "shutdown"


class Expired(_Open):
    """The stream's credential (access token or stream ticket) expired: the server closes the
    stream after this event; reconnect with a fresh credential and the last event id."""

    expires_at: int


# --- requests -----------------------------------------------------------------------------------


class TokenRequest(_Strict):
    username: Annotated[str, Meta(min_length=1, max_length=64)]
    password: Annotated[str, Meta(min_length=1, max_length=1024)]


class RefreshRequest(_Strict):
    refresh_token: Annotated[str, Meta(min_length=1, max_length=256)]


class ConversationCreate(_Strict):
    id: Uuid
    title: Title
    members: Annotated[list[Username], Meta(max_length=MAX_MEMBERS)] = []


class ConversationPatch(_Strict):
    base_version: Version
    title: Title | UnsetType = UNSET
    pinned: bool | UnsetType = UNSET
    members: Annotated[list[Username], Meta(max_length=MAX_MEMBERS)] | UnsetType = UNSET


class ConversationDelete(_Strict):
    base_version: Version


class MessageCreate(_Strict):
    id: Uuid
    body: Body


class MessagePatch(_Strict):
    """``PATCH …/messages/{id}``: the author's new text, against the version they saw."""

    base_version: Version
    body: Body


class MessageDelete(_Strict):
    """``DELETE …/messages/{id}`` (optional body): with ``base_version``, refused with a 409
    when the message changed since; without, deleted whatever its version."""

    base_version: Version | UnsetType = UNSET


class ReadRequest(_Strict):
    seq: Seq


# --- responses ----------------------------------------------------------------------------------


class TokenResponse(_Open):
    access_token: str
    refresh_token: str
    expires_at: int
    username: str
    token_type: str = "bearer"


class RefreshResponse(_Open):
    """A refresh rotates: ``refresh_token`` replaces the one sent, which is spent (reusing a
    spent one after the grace window ends the whole session). ``""`` from an older server:
    keep the old one."""

    access_token: str
    expires_at: int
    token_type: str = "bearer"
    refresh_token: str = ""
    refresh_expires_at: int = 0


class LogoutResult(_Open):
    """``POST auth/logout`` (this session) or ``auth/logout-all`` (every session of the user):
    how many sessions ended."""

    sessions: int


class StreamTicket(_Open):
    """``POST auth/stream-ticket``: a credential for ``GET events?ticket=`` only (browsers
    cannot put an ``Authorization`` header on an ``EventSource``)."""

    ticket: str
    expires_at: int


class ConversationResult(_Open):
    conversation: Conversation
    seq: int


class DeleteResult(_Open):
    id: str
    seq: int


class MessageResult(_Open):
    message: Message
    seq: int


class ReadResult(_Open):
    conversation_id: str
    read_seq: int
    unread: int
    seq: int


class ConversationList(_Open):
    conversations: list[Conversation]
    head: int


class MessagePage(_Open):
    messages: list[Message]
    total_count: int
    has_more: bool


class ChangePage(_Open):
    epoch: int
    head: int
    min_retained: int
    changes: list[Change]
    has_more: bool


class Snapshot(_Open):
    epoch: int
    head: int
    conversations: list[Conversation]
    messages: dict[str, list[Message]] = {}
    # By conversation: the seqs of deleted messages older than its page in ``messages`` (a
    # cache erases them: it may hold older pages loaded before the delete).
    deleted: dict[str, list[int]] = {}
    # By conversation: the edited messages older than its page (a cache updates those it holds).
    edited: dict[str, list[Message]] = {}


class Health(_Open):
    status: str
    version: str
    epoch: int


class ErrorDetail(Struct, omit_defaults=True):
    code: str
    message: str
    current: Conversation | None = None
    current_message: Message | None = None  # a message's 409 version_conflict


class ErrorBody(_Open):
    error: ErrorDetail


def clean_title(title: str) -> str:
    """A conversation title as sent: well formed, stripped; ValueError if blank or too long."""
    title = well_formed(title).strip()
    if not title:
        raise ValueError("a title must not be blank")
    if len(title) > MAX_TITLE_CHARS:
        raise ValueError(f"a title is at most {MAX_TITLE_CHARS} characters")
    return title


def body_too_long(body: str) -> bool:
    return len(body.encode("utf-8")) > MAX_BODY_BYTES


# --- search (``GET search``, and the cache's own index: docs/architecture.md §4.3, §5.11) -------


class SearchPage(_Open):
    """``GET search``: the caller's messages matching ``q``, newest first. ``next_before`` is
    the ``before`` of the next page (None: this was the last)."""

    messages: list[Message]
    next_before: int | None = None


def error_body(
    code: str,
    message: str,
    current: Conversation | None = None,
    current_message: Message | None = None,
) -> bytes:
    detail = ErrorDetail(code=code, message=message, current=current)
    detail.current_message = current_message
    return encode(ErrorBody(detail))
