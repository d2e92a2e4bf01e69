"""An older client against a newer server: a change of a kind it does not know is passed over
(logged once per kind, counted) while the cursor moves past it, on the stream and in ``changes``
pages; a known kind with fields it does not know, anywhere in the change, still applies."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from core import protocol as p
from core.credentials import Credentials
from core.engine import EngineConfig, SyncEngine
from core.store import LocalStore
from tests.support.convergence import assert_converged
from tests.support.live_server import LiveServer
from tests.support.waiting import wait_until

EPOCH = 7
CID = "6632faa5-44a4-47f9-8487-f4adc9c35170"


def conversation(title: str, version: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "id": CID,
        "title": title,
        "pinned": False,
        "version": version,
        "creator": "alice",
        "members": ["alice"],
        "created_at": 1,
        "updated_at": version,
        "message_count": 0,
        "read_seq": 0,
        "unread": 0,
        **extra,
    }


def change(seq: int, kind: str, data: Any, **extra: Any) -> dict[str, Any]:
    return {
        "seq": seq,
        "kind": kind,
        "entity_id": CID,
        "version": 1,
        "data": data,
        "ts": 1000 + seq,
        **extra,
    }


# A page from a newer server: new kinds, and new fields in the page, the change and its data.
NEWER_PAGE = {
    "epoch": EPOCH,
    "head": 5,
    "min_retained": 1,
    "changes": [
        change(1, "conversation.upserted", conversation("one", color="blue"), actor="bob"),
        change(2, "message.reacted", {"message_id": "m1", "emoji": "+1"}),
        change(3, "conversation.archived", {"id": CID}),
        change(4, "message.reacted", {"message_id": "m1", "emoji": "heart"}),
        change(5, "conversation.read", {"conversation_id": CID, "read_seq": 0, "unread": 0}),
    ],
    "has_more": False,
    "region": "eu",
}


def skips(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "skipping changes of kind" in r.getMessage()]


def test_a_page_with_unknown_kinds_and_fields_applies_what_it_knows(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="core.store")
    page = p.decode(json.dumps(NEWER_PAGE), p.ChangePage)
    store = LocalStore(tmp_path / "c.db", apply_log=True)
    try:
        done = store.apply_changes(page.epoch, page.changes)
        assert [c.seq for c in done.changes] == [1, 5]
        assert [c.seq for c in done.skipped] == [2, 3, 4]
        assert store.cursor() == (EPOCH, 5)
        conv = store.conversation(CID)
        assert conv is not None and conv.title == "one"
        assert store.skipped_kinds == {"message.reacted": 2, "conversation.archived": 1}
        assert skips(caplog) == [
            "skipping changes of kind 'message.reacted', unknown to this version",
            "skipping changes of kind 'conversation.archived', unknown to this version",
        ]
        assert [seq for seq, _, _ in store.applied_log()] == [1, 5]
        # A page of nothing but unknown kinds still moves the cursor: never asked for again.
        only = p.decode(json.dumps(change(6, "message.reacted", {})), p.Change)
        again = store.apply_changes(EPOCH, [only])
        assert not again.changes and [c.seq for c in again.skipped] == [6]
        assert store.cursor() == (EPOCH, 6)
        assert store.skipped_kinds["message.reacted"] == 3 and len(skips(caplog)) == 2
    finally:
        store.close()


def test_change_data_refuses_an_unknown_kind() -> None:
    unknown = p.decode(json.dumps(change(1, "message.reacted", {})), p.Change)
    with pytest.raises(p.ProtocolError, match="unknown change kind"):
        p.change_data(unknown)


def test_requests_stay_strict_and_answers_do_not() -> None:
    with pytest.raises(p.ProtocolError):  # the server refuses what it does not know
        p.decode(b'{"seq": 1, "all": true}', p.ReadRequest)
    body = b'{"error": {"code": "x", "message": "y", "hint": "z"}, "trace": "t"}'
    assert p.decode(body, p.ErrorBody).error.code == "x"
    hello = b'{"epoch":1,"head":2,"min_retained":1,"resumed":false,"expires_at":3,"v":2}'
    assert p.decode(hello, p.Hello).head == 2


class PagesApi:
    """Answers ``changes`` with pages from a newer server."""

    base = "http://newer.example"
    access_token = "token"

    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self.pages = pages
        self.asked: list[str] = []

    async def changes(self, since: str, limit: int = 500) -> p.ChangePage:
        self.asked.append(since)
        return p.decode(json.dumps(self.pages.pop(0)), p.ChangePage)


async def test_pulling_pages_moves_the_cursor_past_unknown_kinds(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "c.db")
    store.put("cursor", f"{EPOCH}:0")
    last_page = {**NEWER_PAGE, "changes": [change(6, "message.reacted", {})], "head": 6}
    api = PagesApi([{**NEWER_PAGE, "has_more": True}, last_page, {**last_page, "changes": []}])
    applied: list[Any] = []
    engine = SyncEngine(
        api,  # type: ignore[arg-type]
        store,
        Credentials("unknown-kinds-test"),
        username="alice",
        on_applied=applied.append,
        on_status=lambda status: None,
        on_error=lambda kind, message: pytest.fail(f"{kind}: {message}"),
        config=EngineConfig(),
    )
    try:
        await engine.pull()
        assert api.asked == [f"{EPOCH}:0", f"{EPOCH}:5"]
        assert store.cursor() == (EPOCH, 6) and engine.status.cursor == f"{EPOCH}:6"
        assert len(applied) == 2 and [c.seq for c in applied[1].skipped] == [6]
        await engine.pull()  # nothing is asked for twice
        assert api.asked[-1] == f"{EPOCH}:6"
    finally:
        store.close()


def inject(server: LiveServer, user: str, kind: str, entity: str, data: Any, **extra: Any) -> int:
    """A newer server's change row straight into ``user``'s feed, and a poke to their streams
    (as another instance of a multi-instance deployment would); returns its seq."""
    with sqlite3.connect(server.data_dir / "concord.db", isolation_level=None) as db:
        db.execute("BEGIN IMMEDIATE")
        (uid,) = db.execute("SELECT id FROM users WHERE username=?", (user,)).fetchone()
        (head,) = db.execute(
            "UPDATE feeds SET head=head+1 WHERE user_id=? RETURNING head", (uid,)
        ).fetchone()
        row = {**change(head, kind, data), "entity_id": entity, **extra}
        db.execute("INSERT INTO changes VALUES (?, ?, ?)", (uid, head, json.dumps(row).encode()))
        db.execute("COMMIT")
    loop = server.thread.server.loop
    assert loop is not None
    loop.call_soon_threadsafe(server.app.state.ctx.hub.poke, uid, head)
    return head


async def test_the_stream_passes_over_unknown_kinds(
    live_server: LiveServer, clients, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="core.store")
    a = await clients(live_server.url, "alice", "d1")
    await wait_until(lambda: a.status.state == "live", what="alice live")
    view = await a.create_conversation("before")
    await wait_until(lambda: not a.store.outbox(), what="the create to settle")
    epoch = live_server.app.state.ctx.storage.epoch

    seq = inject(live_server, "alice", "message.reacted", view.id, {"emoji": "+1"})
    await wait_until(lambda: a.store.cursor() == (epoch, seq), what="the cursor past it")
    assert a.store.skipped_kinds == {"message.reacted": 1}
    assert a.engine is not None and a.engine.status.cursor == f"{epoch}:{seq}"

    server_view = (await live_server.snapshot("alice"))["conversations"][0]
    newer = {**server_view, "title": "from a newer server", "color": "blue"}
    seq = inject(live_server, "alice", "conversation.upserted", view.id, newer, actor="bob")
    await wait_until(
        lambda: a.conversation(view.id).title == "from a newer server", what="the known kind"
    )
    assert a.store.cursor() == (epoch, seq)

    # A reconnect resumes after them: nothing is delivered, or skipped, twice.
    a.engine.reconnect_now()
    await wait_until(lambda: a.status.state == "live", what="alice live again")
    await a.rename_conversation(view.id, "after")
    await wait_until(lambda: not a.store.outbox(), what="the rename to settle")
    await asyncio.sleep(0.2)
    assert a.store.skipped_kinds == {"message.reacted": 1}
    assert len(skips(caplog)) == 1
    assert a.conversation(view.id).title == "after"
    await assert_converged(live_server, [a])
