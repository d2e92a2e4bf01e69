"""What the user sees: the server's state with the user's unconfirmed actions laid over it.

Server rows come from :class:`core.store.LocalStore`; pending actions from its outbox. A view is
recomputed per conversation (never for the whole list), so one change costs one row.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from . import protocol as p


@dataclass(slots=True)
class OutboxEntry:
    """One user action waiting for the server. ``state``: queued → sent (acked, waiting for its
    change ``acked_seq`` to be applied) → removed; or failed (kept until dismissed); or held (a
    patch or delete behind a real conflict, until the user chooses "reload" or "keep mine")."""

    id: int
    op: str
    target: str
    body: dict[str, Any]
    created_at: int
    state: str = "queued"
    acked_seq: int | None = None
    attempts: int = 0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class LastMessage:
    """What a conversation list row previews: the newest message's author, first line and time.
    Derived from the cached messages (and pending sends) each time the row is recomputed, so an
    edited or deleted last message changes the preview too."""

    author: str
    text: str  # the first non-empty line, at most PREVIEW_CHARS characters
    created_at: int
    mine: bool = False
    pending: bool = False
    failed: bool = False


PREVIEW_CHARS = 120


@dataclass(frozen=True, slots=True)
class ConversationView:
    id: str
    title: str
    pinned: bool
    creator: str
    members: tuple[str, ...]
    version: int
    created_at: int
    updated_at: int
    message_count: int
    read_seq: int
    unread: int
    pending: bool = False  # an action on it is not yet confirmed by the server
    failed: bool = False  # an action on it was refused (see ``error``)
    error: str | None = None
    last: LastMessage | None = None  # the newest message, for the list's preview
    last_seq: int = 0  # the newest message's seq (what "read up to here" sends)


@dataclass(frozen=True, slots=True)
class MessageView:
    id: str
    conversation_id: str
    seq: int | None  # None while pending: the server assigns it
    author: str
    body: str
    created_at: int
    pending: bool = False
    failed: bool = False
    version: int = 1  # the server's version of it (edits and the delete add one each)
    edited: bool = False  # its text was edited (the "edited" marker)
    edit_pending: bool = False  # this device's edit or delete of it is not confirmed yet
    deleted: bool = False  # it is gone: whoever shows it removes it (nothing else is set)


# Outbox ops on one message (``target`` is its conversation, ``body["id"]`` the message).
MESSAGE_OPS = ("edit_message", "delete_message")


def _from_server(c: p.Conversation) -> ConversationView:
    return ConversationView(
        id=c.id,
        title=c.title,
        pinned=c.pinned,
        creator=c.creator,
        members=tuple(c.members),
        version=c.version,
        created_at=c.created_at,
        updated_at=c.updated_at,
        message_count=c.message_count,
        read_seq=c.read_seq,
        unread=c.unread,
        last_seq=c.last_seq or c.message_count,  # 0: a row cached before message deletes
    )


def conversation_view(
    server: p.Conversation | None, pending: list[OutboxEntry], me: str
) -> ConversationView | None:
    """The conversation as the user sees it, or None when it does not exist for them."""
    view = _from_server(server) if server is not None else None
    for entry in pending:
        if entry.state == "held":
            continue  # lost to a change made elsewhere: the server's row, until the user chooses
        body = entry.body
        failed = entry.state == "failed"
        if entry.op == "create" and view is None and not failed:
            members = tuple(sorted({me, *body.get("members", [])}))
            view = ConversationView(
                id=entry.target,
                title=body["title"],
                pinned=False,
                creator=me,
                members=members,
                version=1,
                created_at=entry.created_at,
                updated_at=entry.created_at,
                message_count=0,
                read_seq=0,
                unread=0,
            )
        if view is None or entry.op in MESSAGE_OPS:
            continue  # an edit or delete of a message: shown on the message, not the row
        if failed:
            view = _replace(view, failed=True, error=entry.error)
            continue
        if entry.op == "patch":
            view = _replace(
                view,
                title=body.get("title", view.title),
                pinned=body.get("pinned", view.pinned),
                members=tuple(sorted({view.creator, *body["members"]}))
                if "members" in body
                else view.members,
            )
        elif entry.op == "delete":
            return None
        elif entry.op == "read":
            view = _replace(view, unread=0, read_seq=view.last_seq)
        elif entry.op == "send":
            view = _replace(view, updated_at=max(view.updated_at, entry.created_at))
        view = _replace(view, pending=True)
    return view


def _replace(view: ConversationView, **changes: object) -> ConversationView:
    fields = {name: getattr(view, name) for name in ConversationView.__slots__}
    fields.update(changes)
    return ConversationView(**fields)


def pending_messages(pending: list[OutboxEntry], me: str) -> list[MessageView]:
    return [
        MessageView(
            id=e.body["id"],
            conversation_id=e.target,
            seq=None,
            author=me,
            body=e.body["body"],
            created_at=e.created_at,
            pending=True,
            failed=e.state == "failed",
        )
        for e in pending
        if e.op == "send"
    ]


def preview_line(body: str) -> str:
    """The first non-empty line of ``body``, trimmed to :data:`PREVIEW_CHARS` (with "…")."""
    line = next((ln.strip() for ln in body.splitlines() if ln.strip()), "")
    return line if len(line) <= PREVIEW_CHARS else line[: PREVIEW_CHARS - 1].rstrip() + "…"


def last_message(messages: list[MessageView], me: str) -> LastMessage | None:
    """The preview of the newest of ``messages`` (in display order: the last one)."""
    if not messages:
        return None
    m = messages[-1]
    return LastMessage(
        m.author, preview_line(m.body), m.created_at, m.author == me, m.pending, m.failed
    )


def message_view(m: p.Message) -> MessageView:
    return MessageView(
        m.id,
        m.conversation_id,
        m.seq,
        m.author,
        m.body,
        m.created_at,
        version=m.version,
        edited=m.edited_at is not None,
        deleted=m.deleted,
    )


def gone(conversation_id: str, message_id: str) -> MessageView:
    """The view of a message that no longer exists (deleted, or a delete not yet confirmed)."""
    return MessageView(message_id, conversation_id, None, "", "", 0, deleted=True)


def message_changes(pending: list[OutboxEntry]) -> dict[str, str | None]:
    """This device's unconfirmed edits by message id: the newest text, or None for a delete."""
    out: dict[str, str | None] = {}
    for e in pending:
        if e.op not in MESSAGE_OPS or e.state not in ("queued", "sent"):
            continue
        mid = str(e.body.get("id", ""))
        if e.op == "delete_message" or out.get(mid, "") is None:
            out[mid] = None  # a delete is final
        else:
            out[mid] = str(e.body.get("body", ""))
    return out


def with_pending_changes(
    messages: list[MessageView], pending: list[OutboxEntry]
) -> list[MessageView]:
    """``messages`` with this device's unconfirmed edits laid over them (marked
    ``edit_pending``); a message with a delete pending is left out (it disappears at once)."""
    changes = message_changes(pending)
    if not changes:
        return messages
    out = []
    for m in messages:
        if m.id not in changes:
            out.append(m)
            continue
        body = changes[m.id]
        if body is not None:
            out.append(_replace_message(m, body=body, edited=True, edit_pending=True))
    return out


def _replace_message(view: MessageView, **changes: object) -> MessageView:
    fields = {name: getattr(view, name) for name in MessageView.__slots__}
    fields.update(changes)
    return MessageView(**fields)


def group_by_target(entries: list[OutboxEntry]) -> dict[str, list[OutboxEntry]]:
    out: dict[str, list[OutboxEntry]] = defaultdict(list)
    for e in entries:
        out[e.target].append(e)
    return dict(out)


def sort_key(view: ConversationView) -> tuple[bool, int, str]:
    """Pinned first, then most recently updated."""
    return (not view.pinned, -view.updated_at, view.id)


@dataclass(frozen=True, slots=True)
class Conflict:
    """Our chain of changes lost to a change made elsewhere; ``theirs`` is the server's row.

    ``mine`` is what the held chain would have made (its fields merged in order, ``delete``
    when it ends in a delete); ``entry_id`` is the first held entry, ``entry_ids`` all of them
    (the user's answer applies to exactly these)."""

    conversation_id: str
    mine: dict[str, Any]
    theirs: p.Conversation | None
    entry_id: int
    entry_ids: tuple[int, ...] = ()  # the whole held chain, in order


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """Something the user should be told: a refused action, an unusable keyring, ..."""

    kind: str  # "rejected" | "keyring" | "sign_in" | "protocol"
    message: str
    conversation_id: str | None = None
