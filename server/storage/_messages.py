"""Messages as SQL inside the caller's write transaction (docs/architecture.md §4.2-§4.4): sends,
edits and deletes, and the message row format that :mod:`._domain` shares.

Only a message's author edits or deletes it. Each edit or delete adds one to the message's
``version``; a stale ``base_version`` is a ``409 version_conflict`` carrying the current message.
A delete keeps the row as a tombstone with its text erased: its id and its ``seq`` are never
given again (``conversations.last_seq`` counts seqs, ``message_count`` only the messages that
exist), and each member's ``unread`` loses the message if it counted it. Both are idempotent
through the operation id (``Idempotency-Key``), like the conversation patches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from core import protocol as p

from ._operations import remember, replayed
from .base import Forbidden, IdConflict, NotFound, VersionConflict, WriteResult

if TYPE_CHECKING:
    from ._domain import FeedWriter

Conn = Any

MESSAGE_COLUMNS = (
    "m.conversation_id, m.seq, m.id, u.username, m.body, m.created_at, m.version, m.edited_at, "
    "m.deleted"
)
MESSAGE_FIELDS = 9  # how many columns MESSAGE_COLUMNS selects


def message_from_row(row: tuple[Any, ...]) -> p.Message:
    """A :class:`p.Message` from the first :data:`MESSAGE_FIELDS` columns of ``row``."""
    cid, seq, mid, author, body, created, version, edited_at, deleted = row[:MESSAGE_FIELDS]
    return p.Message(
        id=mid,
        conversation_id=cid,
        seq=seq,
        author=author,
        body=body,
        created_at=created,
        version=version,
        edited_at=edited_at,
        deleted=bool(deleted),
    )


def send_message(
    feed: FeedWriter, user_id: int, conversation_id: str, req: p.MessageCreate, now: int
) -> WriteResult:
    conn = feed.conn
    cid = conversation_id.lower()
    mid = req.id.lower()
    row = conn.execute(
        "SELECT c.last_seq, u.username FROM conversations c "
        "JOIN members m ON m.conversation_id=c.id JOIN users u ON u.id=m.user_id "
        "WHERE c.id=? AND m.user_id=? AND c.deleted=0",
        (cid, user_id),
    ).fetchone()
    if row is None:
        raise NotFound("no such conversation")
    last_seq, author = row
    existing = conn.execute(
        f"SELECT {MESSAGE_COLUMNS}, m.author_id, m.author_seq FROM messages m "
        "JOIN users u ON u.id=m.author_id WHERE m.id=?",
        (mid,),
    ).fetchone()
    if existing is not None:
        msg = message_from_row(existing)
        author_id, author_seq = existing[MESSAGE_FIELDS:]
        # A tombstone's text is erased: a retry of its send gets the (deleted) message back.
        same = msg.deleted or msg.body == req.body or msg.version > 1
        if author_id != user_id or msg.conversation_id != cid or not same:
            raise IdConflict("a different message already has this id")
        return feed.result(p.MessageResult(msg, author_seq))
    seq = last_seq + 1  # never reused: a deleted message keeps its seq
    conn.execute(
        "UPDATE conversations SET message_count=message_count+1, last_seq=?, updated_at=? "
        "WHERE id=?",
        (seq, now, cid),
    )
    conn.execute(  # the author's read position moves to their message (§7, D5)
        "UPDATE members SET unread=CASE WHEN user_id=? THEN 0 ELSE unread+1 END, "
        "read_seq=CASE WHEN user_id=? THEN ? ELSE read_seq END WHERE conversation_id=?",
        (user_id, user_id, seq, cid),
    )
    count = conn.execute("SELECT message_count FROM conversations WHERE id=?", (cid,)).fetchone()[0]
    msg = p.Message(
        id=mid, conversation_id=cid, seq=seq, author=author, body=req.body, created_at=now
    )
    rows = conn.execute(
        "SELECT user_id, read_seq, unread FROM members WHERE conversation_id=?", (cid,)
    ).fetchall()
    seqs = feed.append_many(
        "message.created",
        mid,
        1,
        {uid: p.MessageCreated(msg, rs, unread, count) for uid, rs, unread in rows},
        now,
    )
    conn.execute(
        "INSERT INTO messages (conversation_id, seq, id, author_id, body, created_at, author_seq) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (cid, seq, mid, user_id, req.body, now, seqs[user_id]),
    )
    return feed.result(p.MessageResult(msg, seqs[user_id]))


def _authored(conn: Conn, user_id: int, cid: str, mid: str) -> p.Message:
    """The message, if the caller may see it (404 otherwise) and wrote it (403 otherwise)."""
    member = conn.execute(
        "SELECT 1 FROM conversations c JOIN members m ON m.conversation_id=c.id "
        "WHERE c.id=? AND m.user_id=? AND c.deleted=0",
        (cid, user_id),
    ).fetchone()
    if member is None:
        raise NotFound("no such conversation")
    row = conn.execute(
        f"SELECT {MESSAGE_COLUMNS}, m.author_id FROM messages m "
        "JOIN users u ON u.id=m.author_id WHERE m.id=? AND m.conversation_id=?",
        (mid, cid),
    ).fetchone()
    if row is None or row[8]:
        raise NotFound("no such message")
    if row[MESSAGE_FIELDS] != user_id:
        raise Forbidden("only its author can change a message")
    return message_from_row(row)


def member_ids(conn: Conn, cid: str) -> list[int]:
    """The members' user ids, in the stable order writes take them in."""
    rows = conn.execute(
        "SELECT user_id FROM members WHERE conversation_id=? ORDER BY user_id", (cid,)
    ).fetchall()
    return [r[0] for r in rows]


def edit_message(
    feed: FeedWriter,
    user_id: int,
    conversation_id: str,
    message_id: str,
    req: p.MessagePatch,
    now: int,
    op_id: str | None = None,
) -> WriteResult:
    conn = feed.conn
    cid, mid = conversation_id.lower(), message_id.lower()
    replay = replayed(conn, user_id, op_id, "edit_message", mid)
    if replay is not None:
        return feed.result(p.decode(replay, p.MessageResult))
    current = _authored(conn, user_id, cid, mid)
    if req.base_version != current.version:
        raise VersionConflict("the message changed elsewhere", current_message=current)
    version = current.version + 1
    conn.execute(
        "UPDATE messages SET body=?, version=?, edited_at=? WHERE conversation_id=? AND seq=?",
        (req.body, version, now, cid, current.seq),
    )
    edited = msgspec.structs.replace(current, body=req.body, version=version, edited_at=now)
    seqs = feed.append_many(
        "message.updated",
        mid,
        version,
        dict.fromkeys(member_ids(conn, cid), p.MessageUpdated(edited)),
        now,
    )
    result = p.MessageResult(edited, seqs[user_id])
    remember(conn, user_id, op_id, "edit_message", mid, version, result, now)
    return feed.result(result)


def delete_message(
    feed: FeedWriter,
    user_id: int,
    conversation_id: str,
    message_id: str,
    base_version: int | None,
    now: int,
    op_id: str | None = None,
) -> WriteResult:
    conn = feed.conn
    cid, mid = conversation_id.lower(), message_id.lower()
    replay = replayed(conn, user_id, op_id, "delete_message", mid)
    if replay is not None:
        return feed.result(p.decode(replay, p.DeleteResult))
    current = _authored(conn, user_id, cid, mid)
    if base_version is not None and base_version != current.version:
        raise VersionConflict("the message changed elsewhere", current_message=current)
    version = current.version + 1
    conn.execute(  # the text is erased, not just flagged
        "UPDATE messages SET body='', deleted=1, version=? WHERE conversation_id=? AND seq=?",
        (version, cid, current.seq),
    )
    conn.execute("UPDATE conversations SET message_count=message_count-1 WHERE id=?", (cid,))
    conn.execute(
        "UPDATE members SET unread=unread-1 WHERE conversation_id=? AND user_id<>? "
        "AND read_seq<? AND unread>0",
        (cid, user_id, current.seq),
    )
    count = conn.execute("SELECT message_count FROM conversations WHERE id=?", (cid,)).fetchone()[0]
    rows = conn.execute(
        "SELECT user_id, read_seq, unread FROM members WHERE conversation_id=?", (cid,)
    ).fetchall()
    seqs = feed.append_many(
        "message.deleted",
        mid,
        version,
        {
            uid: p.MessageDeleted(mid, cid, current.seq, count, rs, unread)
            for uid, rs, unread in rows
        },
        now,
    )
    result = p.DeleteResult(mid, seqs[user_id])
    remember(conn, user_id, op_id, "delete_message", mid, version, result, now)
    return feed.result(result)


def edited_before(conn: Conn, conversation_id: str, below: int) -> list[p.Message]:
    """The conversation's edited messages under ``below`` (for a full sync: a cache may hold
    them as they were before the edit)."""
    rows = conn.execute(
        f"SELECT {MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id=m.author_id "
        "WHERE m.conversation_id=? AND m.seq<? AND m.version>1 AND m.deleted=0 ORDER BY m.seq",
        (conversation_id, below),
    ).fetchall()
    return [message_from_row(r) for r in rows]


def deleted_seqs(conn: Conn, conversation_id: str, below: int) -> list[int]:
    """The seqs of the conversation's deleted messages under ``below`` (for a full sync)."""
    rows = conn.execute(
        "SELECT seq FROM messages WHERE conversation_id=? AND deleted=1 AND seq<? ORDER BY seq",
        (conversation_id, below),
    ).fetchall()
    return [r[0] for r in rows]
