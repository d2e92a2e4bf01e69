"""Domain rules as SQL over one DB-API connection inside a transaction the caller opened.

Every write appends one change row per affected member through :class:`FeedWriter` in the same
transaction as the data change; the row's ``seq`` comes from the user's counter row, which the
transaction holds locked (SQLite: the database write lock).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import msgspec

from core import protocol as p

from ._messages import (
    MESSAGE_COLUMNS,
    deleted_seqs,
    edited_before,
    member_ids,
    message_from_row,
)
from ._operations import remember, replayed
from .base import (
    Deleted,
    FeedState,
    Forbidden,
    IdConflict,
    NotFound,
    StoredChange,
    UnknownUser,
    VersionConflict,
    WriteResult,
)

Conn = Any  # a DB-API connection with qmark parameters


class FeedWriter:
    """Appends change rows to users' feeds and trims each feed to its retention."""

    def __init__(self, conn: Conn, retention: int) -> None:
        self.conn = conn
        self.retention = retention
        self.appended: list[StoredChange] = []

    def append(
        self, user_id: int, kind: str, entity_id: str, version: int, data: Any, ts: int
    ) -> int:
        return self.append_many(kind, entity_id, version, {user_id: data}, ts)[user_id]

    def append_many(
        self, kind: str, entity_id: str, version: int, data_by_user: dict[int, Any], ts: int
    ) -> dict[int, int]:
        """Append one change per user (each with its own data); returns each user's new seq."""
        users = sorted(data_by_user)
        if not users:
            return {}
        rows = self.conn.execute(
            f"UPDATE feeds SET head = head + 1 WHERE user_id IN ({','.join('?' * len(users))}) "
            "RETURNING user_id, head, min_retained",
            users,
        ).fetchall()
        seqs: dict[int, int] = {}
        inserts = []
        for user_id, head, min_retained in sorted(rows):
            data = msgspec.Raw(p.encode(data_by_user[user_id]))
            payload = p.encode(p.Change(head, kind, entity_id, version, data, ts))
            inserts.append((user_id, head, payload))
            seqs[user_id] = head
            self.appended.append(StoredChange(user_id, head, payload))
            # Trim in batches (every 1% of retention) rather than on every append.
            if head - min_retained + 1 > self.retention + max(1, self.retention // 100):
                new_min = head - self.retention + 1
                self.conn.execute(
                    "DELETE FROM changes WHERE user_id=? AND seq<?", (user_id, new_min)
                )
                self.conn.execute(
                    "UPDATE feeds SET min_retained=? WHERE user_id=?", (new_min, user_id)
                )
        self.insert_changes(inserts)
        return seqs

    def insert_changes(self, rows: list[tuple[int, int, bytes]]) -> None:
        """Store ``(user_id, seq, payload)`` rows (an engine may do it in one statement)."""
        self.conn.executemany("INSERT INTO changes VALUES (?, ?, ?)", rows)

    def result(self, value: object) -> WriteResult:
        return WriteResult(value, self.appended)


def feed_state(conn: Conn, user_id: int) -> FeedState:
    row = conn.execute(
        "SELECT head, min_retained FROM feeds WHERE user_id=?", (user_id,)
    ).fetchone()
    return FeedState(row[0], row[1]) if row else FeedState(0, 1)


# --- reads ---------------------------------------------------------------------------------------

_CONV_COLUMNS = (
    "c.id, c.title, c.pinned, c.version, u.username, c.created_at, c.updated_at, "
    "c.message_count, m.read_seq, m.unread, c.last_seq"
)


def _members_of(conn: Conn, conversation_ids: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {cid: [] for cid in conversation_ids}
    for start in range(0, len(conversation_ids), 500):
        chunk = conversation_ids[start : start + 500]
        rows = conn.execute(
            "SELECT m.conversation_id, u.username FROM members m JOIN users u ON u.id=m.user_id "
            f"WHERE m.conversation_id IN ({','.join('?' * len(chunk))}) ORDER BY u.username",
            chunk,
        ).fetchall()
        for cid, name in rows:
            out[cid].append(name)
    return out


def _view(row: tuple[Any, ...], members: list[str]) -> p.Conversation:
    cid, title, pinned, version, creator, created, updated, count, read_seq, unread, last = row
    return p.Conversation(
        id=cid,
        title=title,
        pinned=bool(pinned),
        version=version,
        creator=creator,
        members=members,
        created_at=created,
        updated_at=updated,
        message_count=count,
        read_seq=read_seq,
        unread=unread,
        last_seq=last,
    )


def conversations_of(conn: Conn, user_id: int) -> list[p.Conversation]:
    rows = conn.execute(
        f"SELECT {_CONV_COLUMNS} FROM members m JOIN conversations c ON c.id=m.conversation_id "
        "JOIN users u ON u.id=c.creator_id WHERE m.user_id=? AND c.deleted=0 "
        "ORDER BY c.pinned DESC, c.updated_at DESC, c.id",
        (user_id,),
    ).fetchall()
    members = _members_of(conn, [r[0] for r in rows])
    return [_view(r, members[r[0]]) for r in rows]


def conversation_view(conn: Conn, conversation_id: str, user_id: int) -> p.Conversation | None:
    row = conn.execute(
        f"SELECT {_CONV_COLUMNS} FROM members m JOIN conversations c ON c.id=m.conversation_id "
        "JOIN users u ON u.id=c.creator_id WHERE m.user_id=? AND c.id=? AND c.deleted=0",
        (user_id, conversation_id),
    ).fetchone()
    if row is None:
        return None
    return _view(row, _members_of(conn, [conversation_id])[conversation_id])


def _visible(conn: Conn, conversation_id: str, user_id: int) -> p.Conversation:
    view = conversation_view(conn, conversation_id, user_id)
    if view is None:
        raise NotFound("no such conversation")
    return view


def messages_page(
    conn: Conn, user_id: int, conversation_id: str, before: int | None, limit: int
) -> p.MessagePage:
    conv = _visible(conn, conversation_id, user_id)
    upper = before if before is not None else conv.last_seq + 1
    rows = conn.execute(
        f"SELECT {MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id=m.author_id "
        "WHERE m.conversation_id=? AND m.seq<? AND m.deleted=0 ORDER BY m.seq DESC LIMIT ?",
        (conversation_id, upper, limit),
    ).fetchall()
    messages = [message_from_row(r) for r in reversed(rows)]
    has_more = bool(messages) and bool(
        conn.execute(
            "SELECT 1 FROM messages WHERE conversation_id=? AND seq<? AND deleted=0 LIMIT 1",
            (conversation_id, messages[0].seq),
        ).fetchone()
    )
    return p.MessagePage(messages, conv.message_count, has_more)


def snapshot(conn: Conn, epoch: int, user_id: int, messages_per_conversation: int) -> p.Snapshot:
    """Everything a full sync needs; run in one read transaction (the head first, then data)."""
    head = feed_state(conn, user_id).head
    conversations = conversations_of(conn, user_id)
    messages: dict[str, list[p.Message]] = {}
    deleted: dict[str, list[int]] = {}
    edited: dict[str, list[p.Message]] = {}
    for conv in conversations:
        below = conv.last_seq + 1
        if messages_per_conversation > 0:
            page = messages_page(conn, user_id, conv.id, None, messages_per_conversation)
            messages[conv.id] = page.messages
            below = page.messages[0].seq if page.messages else below
        gone = deleted_seqs(conn, conv.id, below)
        if gone:
            deleted[conv.id] = gone
        changed = edited_before(conn, conv.id, below)
        if changed:
            edited[conv.id] = changed
    return p.Snapshot(epoch, head, conversations, messages, deleted, edited)


# --- writes --------------------------------------------------------------------------------------


def _user_ids(conn: Conn, usernames: list[str]) -> dict[str, int]:
    names = sorted(set(usernames))
    found: dict[str, int] = {}
    for start in range(0, len(names), 500):
        chunk = names[start : start + 500]
        rows = conn.execute(
            f"SELECT username, id FROM users WHERE username IN ({','.join('?' * len(chunk))})",
            chunk,
        ).fetchall()
        found.update(rows)
    missing = [n for n in names if n not in found]
    if missing:
        raise UnknownUser(f"unknown user(s): {', '.join(missing[:5])}")
    return found


def _publish_upsert(
    feed: FeedWriter, conversation_id: str, user_ids: list[int], ts: int
) -> dict[int, int]:
    """One ``conversation.upserted`` per member, each with that member's read position."""
    if not user_ids:
        return {}
    base = conversation_view(feed.conn, conversation_id, user_ids[0])
    assert base is not None
    read = {
        uid: (rs, unread)
        for uid, rs, unread in feed.conn.execute(
            "SELECT user_id, read_seq, unread FROM members WHERE conversation_id=?",
            (conversation_id,),
        ).fetchall()
    }
    views = {
        uid: msgspec.structs.replace(base, read_seq=read[uid][0], unread=read[uid][1])
        for uid in user_ids
    }
    return feed.append_many("conversation.upserted", conversation_id, base.version, views, ts)


def create_conversation(
    feed: FeedWriter, user_id: int, req: p.ConversationCreate, now: int
) -> WriteResult:
    conn = feed.conn
    cid = req.id.lower()
    title = req.title.strip()
    creator = conn.execute("SELECT username FROM users WHERE id=?", (user_id,)).fetchone()[0]
    names = sorted(set(req.members) | {creator})
    origin = hashlib.sha256(json.dumps([creator, title, names]).encode()).hexdigest()
    existing = conn.execute(
        "SELECT creator_id, origin, deleted, creator_seq FROM conversations WHERE id=?", (cid,)
    ).fetchone()
    if existing is not None:
        ex_creator, ex_origin, ex_deleted, ex_seq = existing
        if ex_creator != user_id or ex_origin != origin:
            raise IdConflict("a different conversation already has this id")
        if ex_deleted:
            raise Deleted("this conversation was deleted")
        return feed.result(p.ConversationResult(_visible(conn, cid, user_id), ex_seq))
    ids = _user_ids(conn, names)
    conn.execute(
        "INSERT INTO conversations (id, title, pinned, version, creator_id, created_at, "
        "updated_at, message_count, deleted, origin, creator_seq, last_seq) "
        "VALUES (?, ?, 0, 1, ?, ?, ?, 0, 0, ?, 0, 0)",
        (cid, title, user_id, now, now, origin),
    )
    conn.executemany(
        "INSERT INTO members (conversation_id, user_id) VALUES (?, ?)",
        [(cid, uid) for uid in sorted(ids.values())],
    )
    seqs = _publish_upsert(feed, cid, sorted(ids.values()), now)
    conn.execute("UPDATE conversations SET creator_seq=? WHERE id=?", (seqs[user_id], cid))
    return feed.result(p.ConversationResult(_visible(conn, cid, user_id), seqs[user_id]))


def patch_conversation(
    feed: FeedWriter,
    user_id: int,
    conversation_id: str,
    req: p.ConversationPatch,
    now: int,
    op_id: str | None = None,
) -> WriteResult:
    conn = feed.conn
    cid = conversation_id.lower()
    replay = replayed(conn, user_id, op_id, "patch", cid)
    if replay is not None:
        return feed.result(p.decode(replay, p.ConversationResult))
    current = _visible(conn, cid, user_id)
    if req.base_version != current.version:
        raise VersionConflict("the conversation changed elsewhere", current=current)
    before = member_ids(conn, cid)
    removed: list[int] = []
    if req.members is not msgspec.UNSET:
        if current.creator != _username(conn, user_id):
            raise Forbidden("only the creator can change the members")
        wanted = _user_ids(conn, [*req.members, current.creator])
        after = set(wanted.values())
        removed = [uid for uid in before if uid not in after]
        added = sorted(after - set(before))
        conn.executemany(
            "DELETE FROM members WHERE conversation_id=? AND user_id=?",
            [(cid, uid) for uid in removed],
        )
        conn.executemany(  # a new member has every message of the others still to read
            "INSERT INTO members (conversation_id, user_id, unread) VALUES (?, ?, (SELECT "
            "count(*) FROM messages WHERE conversation_id=? AND deleted=0 AND author_id<>?))",
            [(cid, uid, cid, uid) for uid in added],
        )
    sets = ["version=version+1", "updated_at=?"]
    params: list[Any] = [now]
    if req.title is not msgspec.UNSET:
        sets.append("title=?")
        params.append(req.title.strip())
    if req.pinned is not msgspec.UNSET:
        sets.append("pinned=?")
        params.append(int(req.pinned))
    conn.execute(f"UPDATE conversations SET {', '.join(sets)} WHERE id=?", (*params, cid))
    version = current.version + 1
    for uid in removed:
        feed.append(
            uid, "conversation.deleted", cid, version, p.ConversationDeleted(cid, "removed"), now
        )
    seqs = _publish_upsert(feed, cid, member_ids(conn, cid), now)
    result = p.ConversationResult(_visible(conn, cid, user_id), seqs[user_id])
    remember(conn, user_id, op_id, "patch", cid, version, result, now)
    return feed.result(result)


def _username(conn: Conn, user_id: int) -> str:
    username: str = conn.execute("SELECT username FROM users WHERE id=?", (user_id,)).fetchone()[0]
    return username


def delete_conversation(
    feed: FeedWriter,
    user_id: int,
    conversation_id: str,
    base_version: int,
    now: int,
    op_id: str | None = None,
) -> WriteResult:
    conn = feed.conn
    cid = conversation_id.lower()
    replay = replayed(conn, user_id, op_id, "delete", cid)
    if replay is not None:
        return feed.result(p.decode(replay, p.DeleteResult))
    current = _visible(conn, cid, user_id)
    if current.creator != _username(conn, user_id):
        raise Forbidden("only the creator can delete a conversation")
    if base_version != current.version:
        raise VersionConflict("the conversation changed elsewhere", current=current)
    version = current.version + 1
    conn.execute(
        "UPDATE conversations SET deleted=1, version=?, updated_at=? WHERE id=?",
        (version, now, cid),
    )
    tombstone = p.ConversationDeleted(cid)
    seqs = feed.append_many(
        "conversation.deleted", cid, version, dict.fromkeys(member_ids(conn, cid), tombstone), now
    )
    conn.execute("DELETE FROM members WHERE conversation_id=?", (cid,))
    conn.execute("DELETE FROM messages WHERE conversation_id=?", (cid,))
    result = p.DeleteResult(cid, seqs[user_id])
    remember(conn, user_id, op_id, "delete", cid, version, result, now)
    return feed.result(result)


def mark_read(
    feed: FeedWriter, user_id: int, conversation_id: str, seq: int, now: int
) -> WriteResult:
    conn = feed.conn
    cid = conversation_id.lower()
    conv = _visible(conn, cid, user_id)
    new = min(max(conv.read_seq, seq), conv.last_seq)
    if new == conv.read_seq:
        head = feed_state(conn, user_id).head
        return feed.result(p.ReadResult(cid, new, conv.unread, head))
    unread = conn.execute(  # other members' messages after it that exist
        "SELECT count(*) FROM messages WHERE conversation_id=? AND seq>? AND author_id<>? "
        "AND deleted=0",
        (cid, new, user_id),
    ).fetchone()[0]
    conn.execute(
        "UPDATE members SET read_seq=?, unread=? WHERE conversation_id=? AND user_id=?",
        (new, unread, cid, user_id),
    )
    change_seq = feed.append(
        user_id, "conversation.read", cid, conv.version, p.ConversationRead(cid, new, unread), now
    )
    return feed.result(p.ReadResult(cid, new, unread, change_seq))
