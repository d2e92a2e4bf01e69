"""The cache's search index and its size bound (core._search_store, core.search): the index
follows every write — applied messages, edits, deletes, renames, evictions, full syncs — in the
same transaction; loaded pages are kept; eviction takes the least recently updated
conversations' oldest messages first; nothing a user types is ever an error. Then
``Client.search``/``search_server`` against a real server, from a leader and a follower."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec
import pytest

from core import protocol as p
from core._migrations import STEPS, migrate
from core.search_results import match_ranges
from core.store import LocalStore
from tests.support.waiting import wait_until

EPOCH = 3


def conv(cid: str, title: str, count: int = 0, at: int = 1, version: int = 1) -> p.Conversation:
    return p.Conversation(
        id=cid,
        title=title,
        pinned=False,
        version=version,
        creator="alice",
        members=["alice", "bob"],
        created_at=1,
        updated_at=at,
        message_count=count,
        read_seq=0,
        unread=0,
        last_seq=count,
    )


def msg(cid: str, seq: int, body: str, at: int = 1000) -> p.Message:
    return p.Message(
        id=f"{cid}-{seq}",
        conversation_id=cid,
        seq=seq,
        author="bob",
        body=body,
        created_at=at + seq,
    )


def change(seq: int, kind: str, data: object) -> p.Change:
    return p.Change(seq, kind, "e", 1, msgspec.Raw(p.encode(data)), 1)


def found(store: LocalStore, text: str, cid: str | None = None) -> list[str]:
    return [m.body for m in store.search_messages(p.search_terms(text), 100, cid)]


def snapshot(*convs: p.Conversation, head: int = 0, **messages: list[p.Message]) -> p.Snapshot:
    return p.Snapshot(epoch=EPOCH, head=head, conversations=list(convs), messages=messages)


def test_the_index_follows_applies_edits_deletes_and_renames(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "c.db")
    store.apply_snapshot(
        snapshot(conv("a", "Déjà vu planning", 1), a=[msg("a", 1, "Kick-off at the café")])
    )
    assert found(store, "CAFE") == ["Kick-off at the café"]
    assert found(store, "kick of") == ["Kick-off at the café"]  # the last word: a prefix
    assert found(store, "of kick") == []  # the others: whole words
    assert store.search_titles(["deja"], 10) == ["a"]

    new = p.MessageCreated(msg("a", 2, "deploy on Friday"), 0)
    store.apply_changes(EPOCH, [change(1, "message.created", new)])
    assert found(store, "fri") == ["deploy on Friday"]

    edited = msgspec.structs.replace(msg("a", 2, "deploy on Monday"), version=2, edited_at=5)
    store.apply_changes(EPOCH, [change(2, "message.updated", p.MessageUpdated(edited))])
    assert found(store, "friday") == [] and found(store, "mond") == ["deploy on Monday"]

    gone = p.MessageDeleted("a-2", "a", 2, 1, 0, 0)
    store.apply_changes(EPOCH, [change(3, "message.deleted", gone)])
    assert found(store, "deploy") == []

    renamed = conv("a", "Roadmap", 1, version=2)
    store.apply_changes(EPOCH, [change(4, "conversation.upserted", renamed)])
    assert store.search_titles(["deja"], 10) == [] and store.search_titles(["road"], 10) == ["a"]

    store.apply_changes(EPOCH, [change(5, "conversation.deleted", p.ConversationDeleted("a"))])
    assert found(store, "cafe") == [] and store.search_titles(["road"], 10) == []
    assert store.search_index_ok() and store.message_count() == 0


def test_matches_come_newest_first_and_per_conversation(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "c.db")
    store.apply_snapshot(
        snapshot(
            conv("a", "A", 2),
            conv("b", "B", 1),
            a=[msg("a", 1, "build one", at=100), msg("a", 2, "build three", at=300)],
            b=[msg("b", 1, "build two", at=200)],
        )
    )
    assert found(store, "build") == ["build three", "build two", "build one"]
    assert found(store, "build", "b") == ["build two"]
    assert found(store, "build", "nope") == []


def test_loaded_pages_stay_when_new_messages_arrive(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "c.db")
    store.apply_snapshot(
        snapshot(conv("a", "A", 400), a=[msg("a", s, f"m{s}") for s in range(351, 401)])
    )
    for lo in range(301, 0, -50):  # the user scrolls back to the very first message
        store.add_messages([msg("a", s, f"m{s}") for s in range(lo, lo + 50)])
    for seq in range(401, 411):
        store.apply_changes(
            EPOCH, [change(seq, "message.created", p.MessageCreated(msg("a", seq, f"m{seq}"), 0))]
        )
    assert store.message_count() == 410 and store.oldest_seq("a") == 1
    assert found(store, "m1 m1") == ["m1"]  # the whole word "m1": the oldest page is kept
    assert [m.seq for m in store.messages_before("a", 51, 50)] == list(range(1, 51))


def test_eviction_takes_the_stalest_conversations_oldest_messages_first(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "c.db", max_messages=200)
    store.apply_snapshot(
        snapshot(
            conv("old", "Old", 120, at=10),
            conv("new", "New", 60, at=20),
            old=[msg("old", s, f"old {s}") for s in range(1, 121)],
            new=[msg("new", s, f"new {s}") for s in range(1, 61)],
        )
    )
    assert store.message_count() == 180
    more = [msg("new", s, f"new {s}") for s in range(61, 101)]
    store.apply_changes(
        EPOCH,
        [change(i, "message.created", p.MessageCreated(m, 0)) for i, m in enumerate(more, 1)],
    )
    # 220 > 200: down to 190, the stale conversation's oldest 30 first (its newest 50 kept).
    assert store.message_count() == 190
    assert store.oldest_seq("old") == 31 and store.oldest_seq("new") == 1
    assert found(store, "old 30") == [] and found(store, "old 31") == ["old 31"]
    assert store.search_index_ok()


def test_past_every_older_page_even_the_newest_go_stalest_first(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "c.db", max_messages=100)
    convs = [conv(f"c{i}", f"C{i}", 40, at=i) for i in range(3)]
    pages = {f"c{i}": [msg(f"c{i}", s, f"c{i} {s}") for s in range(1, 41)] for i in range(3)}
    store.apply_snapshot(snapshot(*convs, **pages))
    assert store.message_count() == 95
    assert store.oldest_seq("c0") == 26 and store.oldest_seq("c1") == 1


@pytest.mark.parametrize(
    "typed",
    [
        '"',
        '""',
        "'",
        'a "b',
        "OR",
        "a OR b",
        "NOT x",
        "NEAR(a b",
        "x*",
        "*",
        "^x",
        "text:x",
        "conv:c1",
        "{text}: x",
        "(",
        ")",
        "a AND",
        "-",
        "+x",
        "\\",
        "%",
        "_",
        "🙂",
        "ǅ",
        " ",
        "",
    ],
)
def test_nothing_a_user_types_is_an_error(tmp_path: Path, typed: str) -> None:
    store = LocalStore(tmp_path / "c.db")
    body = 'odd "quoted" OR NEAR(a b) text:x conv:c1 🙂 100%'
    store.apply_snapshot(snapshot(conv("a", 'Title "x" OR y', 1), a=[msg("a", 1, body)]))
    terms = p.search_terms(typed)
    assert isinstance(store.search_messages(terms, 10), list)
    assert isinstance(store.search_messages(terms, 10, "a"), list)
    assert isinstance(store.search_titles(terms, 10), list)
    assert isinstance(match_ranges(body, terms), tuple)


def test_a_full_sync_repairs_the_index_and_drops_unreachable_history(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "c.db")
    store.apply_snapshot(
        snapshot(conv("a", "A", 60), a=[msg("a", s, f"m{s}") for s in range(11, 61)])
    )
    store.db.execute("DELETE FROM message_fts")  # damage it behind the triggers' back
    store.db.execute("DELETE FROM title_fts")
    assert not store.search_index_ok() and found(store, "m20") == []
    # 100 more were written while this device was away: its old page no longer reaches the new.
    later = snapshot(conv("a", "A", 160), head=9, a=[msg("a", s, f"m{s}") for s in range(111, 161)])
    store.apply_snapshot(later)
    assert store.search_index_ok() and store.search_titles(["a"], 5) == ["a"]
    assert found(store, "m20") == [] and found(store, "m120") == ["m120"]
    assert store.oldest_seq("a") == 111


def test_an_older_cache_is_indexed_by_the_migration(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    db = sqlite3.connect(path, isolation_level=None)
    migrate(db, STEPS[:3])
    db.execute("INSERT INTO conversations VALUES ('a', ?)", (p.encode(conv("a", "Ünïcode")),))
    db.execute("INSERT INTO messages VALUES ('a', 1, 'a-1', ?)", (p.encode(msg("a", 1, "Grüße")),))
    db.close()
    store = LocalStore(path)
    assert found(store, "grusse") == [] and found(store, "gruß") == ["Grüße"]
    assert store.search_titles(["unicode"], 5) == ["a"] and store.message_count() == 1


def test_match_ranges_mark_whole_words_and_the_last_as_prefix() -> None:
    text = "Déploiement: deploy the DEPLOYER, redeploy"
    assert match_ranges(text, ["deploy"]) == ((13, 19), (24, 32))
    assert match_ranges(text, ["DEPLOIE"]) == ((0, 11),)
    assert match_ranges(text, ["deploy", "the"]) == ((13, 19), (20, 23))
    assert match_ranges(text, []) == ()


async def test_client_search_local_and_on_the_server(live_server, clients) -> None:  # type: ignore[no-untyped-def]
    writer = await clients(live_server.url, "alice", "laptop")
    conv_view = await writer.create_conversation("Launch plans", ["bob"])
    for i in range(80):
        await writer.send_message(conv_view.id, f"launch checklist item {i}")
    await writer.wait_synced(15)
    # A new device caches the last 50: the first 30 are only on the server.
    phone = await clients(live_server.url, "alice", "phone", cache_messages=1000)
    follower = await clients(live_server.url, "alice", "phone")
    await wait_until(lambda: len(follower.messages(conv_view.id)) == 50, what="phone's snapshot")
    local = phone.search("Launch check")
    assert local.conversations == []  # every word must match: the title has no "check…"
    titles = phone.search("launch PL").conversations
    assert [h.conversation.title for h in titles] == ["Launch plans"]
    assert titles[0].ranges == ((0, 6), (7, 12))
    assert len(local.messages) == 50 and local.messages[0].message.body.endswith(" 79")
    assert local.messages[0].ranges == ((0, 6), (7, 16))
    fives = phone.search("item 5").messages  # "5" as a prefix: 50-59 (5 is not cached)
    assert sorted(int(h.message.body.split()[-1]) for h in fives) == list(range(50, 60))
    server = await phone.search_server("checklist item", limit=20)
    assert [h.message.body for h in server.messages][:2] == [
        "launch checklist item 79",
        "launch checklist item 78",
    ]
    assert all(h.source == "server" for h in server.messages)
    page = server
    bodies = [h.message.body for h in page.messages]
    while page.next_before is not None:
        page = await follower.search_server("checklist item", before=page.next_before, limit=20)
        bodies += [h.message.body for h in page.messages]
    assert bodies == [f"launch checklist item {i}" for i in range(79, -1, -1)]
    assert (await follower.search_server("!!!")).messages == []

    # Scrolling back fetches the older page once; then it is in the cache, offline too.
    older = await follower.load_older(conv_view.id)
    assert [m.seq for m in older] == list(range(1, 31))
    live_server.stop()
    again = await phone.load_older(conv_view.id, 50, 31)
    assert [m.body for m in again] == [f"launch checklist item {i}" for i in range(30)]
    assert "launch checklist item 3" in [h.message.body for h in phone.search("item 3").messages]


def test_writes_made_straight_to_the_tables_keep_the_index_right(tmp_path: Path) -> None:
    """The triggers, not the store's methods, keep the index: any writer's row changes count."""
    store = LocalStore(tmp_path / "c.db")
    store.apply_snapshot(snapshot(conv("a", "A", 2), a=[msg("a", 1, "alpha"), msg("a", 2, "beta")]))
    row = ("a", 1, "a-1", p.encode(msg("a", 1, "gamma")))
    store.db.execute("INSERT OR REPLACE INTO messages VALUES (?, ?, ?, ?)", row)
    store.db.execute("INSERT OR IGNORE INTO messages VALUES (?, ?, ?, ?)", row)
    store.db.execute(
        "UPDATE messages SET body=? WHERE conversation_id='a' AND seq=2",
        (p.encode(msg("a", 2, "delta")),),
    )
    assert found(store, "alpha") == found(store, "beta") == []
    assert found(store, "gamma") == ["gamma"] and found(store, "delta") == ["delta"]
    assert store.message_count() == 2 and store.search_index_ok()
    store.db.execute("DELETE FROM messages WHERE conversation_id='a'")
    assert found(store, "gamma") == [] and store.message_count() == 0 and store.search_index_ok()
