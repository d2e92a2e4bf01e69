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
        if view is None:
            continue
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
            view = _replace(view, unread=0, read_seq=view.message_count)
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


def message_view(m: p.Message) -> MessageView:
    return MessageView(m.id, m.conversation_id, m.seq, m.author, m.body, m.created_at)


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
