"""The storage contract, run against SQLite and PostgreSQL alike (docs/architecture.md §4.7).

Each test gets a fresh store of each engine: an SQLite file in ``tmp_path``, or an empty
PostgreSQL database (``fresh_postgres``: skipped without ``CONCORD_TEST_POSTGRES_URL``, failed
without it under CI).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import msgspec
import pytest

from core import protocol as p
from server.storage import (
    Deleted,
    Forbidden,
    IdConflict,
    KeyReused,
    NewSession,
    NotFound,
    Rotated,
    Storage,
    UnknownUser,
    UserExists,
    VersionConflict,
)
from server.storage.factory import storage_for

OpenStore = Callable[..., Awaitable[Storage]]


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    if request.param == "sqlite":
        return tmp_path / "concord.db"
    url: str = request.getfixturevalue("fresh_postgres")
    return url


@pytest.fixture
async def open_store(database: str | Path) -> AsyncIterator[OpenStore]:
    """``await open_store(retention=...)``: an opened store on the test's database."""
    opened: list[Storage] = []

    async def make(retention: int = 10_000) -> Storage:
        store = storage_for(database, retention=retention, durable=False)
        opened.append(store)
        await store.open()
        return store

    yield make
    for store in opened:
        await store.close()


@pytest.fixture
async def store(open_store: OpenStore) -> Storage:
    return await open_store()


async def add_users(store: Storage, *names: str) -> dict[str, int]:
    return {name: await store.add_user(name, f"hash-{name}", 1) for name in names}


def changes(rows: list[object]) -> list[p.Change]:
    return [p.decode(r.payload, p.Change) for r in rows]  # type: ignore[attr-defined]


async def feed(store: Storage, user_id: int) -> list[p.Change]:
    return changes(list(await store.changes_since(user_id, 0, 100_000)))


def create(cid: str, title: str = "t", members: tuple[str, ...] = ()) -> p.ConversationCreate:
    return p.ConversationCreate(id=cid, title=title, members=list(members))


# --- accounts, epoch, schema -----------------------------------------------------------------


async def test_users_and_credentials(store: Storage) -> None:
    ids = await add_users(store, "alice", "bob")
    assert ids["alice"] != ids["bob"]
    with pytest.raises(UserExists):
        await store.add_user("alice", "other", 2)
    assert await store.user_credentials("alice") == (ids["alice"], "hash-alice")
    assert await store.user_credentials("nobody") is None
    state = await store.feed_state(ids["bob"])
    assert (state.head, state.min_retained) == (0, 1)


async def test_epoch_secrets_and_data_survive_reopening(open_store: OpenStore) -> None:
    first = await open_store()
    ids = await add_users(first, "alice")
    epoch, secret = first.epoch, await first.server_secret("tickets")
    assert epoch > 1 and len(secret) == 32
    assert await first.server_secret("other") != secret
    await first.close()
    again = await open_store()  # the migrations run again: a no-op
    assert again.epoch == epoch
    assert await again.server_secret("tickets") == secret
    assert await again.user_credentials("alice") == (ids["alice"], "hash-alice")


# --- the feed --------------------------------------------------------------------------------


async def test_concurrent_multi_member_writes_keep_every_feed_gap_free(store: Storage) -> None:
    """Many writes at once over overlapping member sets: no deadlock, no lost or doubled seq,
    and each user sees each conversation's messages in the conversation's seq order."""
    names = [f"u{i}" for i in range(6)]
    ids = await add_users(store, *names)
    convs = [f"c{i}" for i in range(6)]
    for i, cid in enumerate(convs):  # c_i: u_i, u_i+1, u_i+2 (each user is in three)
        members = (names[(i + 1) % 6], names[(i + 2) % 6])
        await store.create_conversation(ids[names[i]], create(cid, members=members), 1)
    writes = [
        store.send_message(
            ids[names[(i + k % 3) % 6]], cid, p.MessageCreate(id=f"m{i}-{k}", body=f"hi {k}"), 2
        )
        for k in range(12)
        for i, cid in enumerate(convs)
    ]
    results = await asyncio.wait_for(asyncio.gather(*writes), 60)
    assert len(results) == 72
    for name in names:
        got = await feed(store, ids[name])
        assert [c.seq for c in got] == list(range(1, len(got) + 1)), name
        assert len(got) == 3 + 3 * 12  # three conversations created, 12 messages in each
        assert (await store.feed_state(ids[name])).head == len(got)
        by_conv: dict[str, list[int]] = {}
        for c in got:
            if c.kind == "message.created":
                msg = msgspec.json.decode(c.data, type=p.MessageCreated).message
                by_conv.setdefault(msg.conversation_id, []).append(msg.seq)
        assert all(seqs == list(range(1, 13)) for seqs in by_conv.values()), by_conv


async def test_member_changes_racing_sends_take_locks_in_one_order(
    store: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    """Patches that remove and add members (appending to two sets of feeds) racing sends over
    overlapping member sets: no deadlock to retry (PostgreSQL), every feed gap-free."""
    caplog.set_level(logging.DEBUG, logger="server.storage.postgres")
    names = [f"u{i}" for i in range(8)]
    ids = await add_users(store, *names)
    for i in range(8):
        members = tuple(names[(i + j) % 8] for j in range(1, 5))
        await store.create_conversation(ids[names[i]], create(f"c{i}", members=members), 1)

    async def churn(i: int) -> None:
        for r in range(4):
            listed = (await store.list_conversations(ids[names[i]])).conversations
            version = next(c.version for c in listed if c.id == f"c{i}")
            members = [names[(i + j) % 8] for j in range(1, 5) if (j + r) % 3]
            patch = p.ConversationPatch(base_version=version, members=members)
            await store.patch_conversation(ids[names[i]], f"c{i}", patch, 2)

    async def sends(i: int) -> None:
        for k in range(10):
            req = p.MessageCreate(id=f"m{i}-{k}", body="x")
            await store.send_message(ids[names[i]], f"c{i}", req, 3)

    work = [churn(i) for i in range(8)] + [sends(i) for i in range(8)]
    await asyncio.wait_for(asyncio.gather(*work), 60)
    for name in names:
        got = await store.changes_since(ids[name], 0, 100_000)
        assert [c.seq for c in got] == list(range(1, len(got) + 1)), name
    assert not [r for r in caplog.records if "retrying" in r.getMessage()]


async def test_retention_trims_each_feed(open_store: OpenStore) -> None:
    store = await open_store(retention=10)
    ids = await add_users(store, "alice")
    await store.create_conversation(ids["alice"], create("c"), 1)
    for i in range(40):
        await store.send_message(ids["alice"], "c", p.MessageCreate(id=f"m{i}", body="x"), 2)
    state = await store.feed_state(ids["alice"])
    assert state.head == 41
    assert 1 < state.min_retained and state.head - state.min_retained + 1 <= 11
    kept = await store.changes_since(ids["alice"], 0, 100)
    assert [r.seq for r in kept] == list(range(state.min_retained, 42))


# --- conversations ---------------------------------------------------------------------------


async def test_conversation_create_patch_delete_and_replays(store: Storage) -> None:
    ids = await add_users(store, "alice", "bob", "carol")
    alice, bob, carol = ids["alice"], ids["bob"], ids["carol"]
    made = await store.create_conversation(alice, create("C1", "Plans", ("bob",)), 10)
    result = made.value
    assert isinstance(result, p.ConversationResult)
    assert result.conversation.id == "c1" and result.conversation.members == ["alice", "bob"]
    assert {(c.user_id, c.seq) for c in made.changes} == {(alice, 1), (bob, 1)}
    again = await store.create_conversation(alice, create("c1", "Plans", ("bob",)), 11)
    assert again.value == result and again.changes == []  # a replay: same answer, no change
    with pytest.raises(IdConflict):
        await store.create_conversation(alice, create("c1", "Other", ("bob",)), 12)
    with pytest.raises(UnknownUser):
        await store.create_conversation(alice, create("c2", "x", ("nobody",)), 12)

    patch = p.ConversationPatch(base_version=1, title="Plans!", members=["carol"])
    patched = (await store.patch_conversation(alice, "c1", patch, 20, op_id="op1")).value
    assert isinstance(patched, p.ConversationResult)
    assert patched.conversation.version == 2 and patched.conversation.members == ["alice", "carol"]
    replay = await store.patch_conversation(alice, "c1", patch, 21, op_id="op1")
    assert replay.value == patched and replay.changes == []
    with pytest.raises(KeyReused):
        await store.delete_conversation(alice, "c1", 2, 22, op_id="op1")
    with pytest.raises(VersionConflict) as conflict:
        await store.patch_conversation(alice, "c1", p.ConversationPatch(base_version=1), 22)
    assert conflict.value.current is not None and conflict.value.current.version == 2
    with pytest.raises(Forbidden):
        await store.patch_conversation(
            carol, "c1", p.ConversationPatch(base_version=2, members=["bob"]), 22
        )
    removed = (await feed(store, bob))[-1]
    assert (removed.kind, removed.entity_id) == ("conversation.deleted", "c1")
    assert [c.id for c in (await store.list_conversations(bob)).conversations] == []
    with pytest.raises(NotFound):
        await store.messages_page(bob, "c1", None, 10)

    with pytest.raises(Forbidden):
        await store.delete_conversation(carol, "c1", 2, 30)
    gone = await store.delete_conversation(alice, "c1", 2, 30, op_id="op2")
    assert isinstance(gone.value, p.DeleteResult)
    assert {c.user_id for c in gone.changes} == {alice, carol}
    assert (await store.delete_conversation(alice, "c1", 2, 31, op_id="op2")).value == gone.value
    with pytest.raises(Deleted):
        await store.create_conversation(alice, create("c1", "Plans", ("bob",)), 32)
    listed = await store.list_conversations(alice)
    assert listed.conversations == [] and listed.head == (await store.feed_state(alice)).head


# --- messages --------------------------------------------------------------------------------


async def test_messages_send_edit_delete_and_pages(store: Storage) -> None:
    ids = await add_users(store, "alice", "bob")
    alice, bob = ids["alice"], ids["bob"]
    await store.create_conversation(alice, create("c", members=("bob",)), 1)
    for i in range(5):
        await store.send_message(alice, "c", p.MessageCreate(id=f"m{i}", body=f"body {i}"), 10 + i)
    dup = await store.send_message(alice, "c", p.MessageCreate(id="m0", body="body 0"), 20)
    assert isinstance(dup.value, p.MessageResult) and dup.value.message.seq == 1
    assert dup.changes == []
    with pytest.raises(IdConflict):
        await store.send_message(alice, "c", p.MessageCreate(id="m0", body="changed"), 20)
    with pytest.raises(NotFound):
        await store.send_message(alice, "nope", p.MessageCreate(id="mx", body="x"), 20)

    edit = p.MessagePatch(base_version=1, body="edited")
    edited = (await store.edit_message(alice, "c", "m1", edit, 30, op_id="e1")).value
    assert isinstance(edited, p.MessageResult) and edited.message.version == 2
    assert (await store.edit_message(alice, "c", "m1", edit, 31, op_id="e1")).value == edited
    with pytest.raises(VersionConflict) as conflict:
        await store.edit_message(alice, "c", "m1", edit, 32)
    assert conflict.value.current_message is not None
    with pytest.raises(Forbidden):
        await store.edit_message(bob, "c", "m1", p.MessagePatch(base_version=2, body="x"), 32)
    await store.delete_message(alice, "c", "m3", None, 40, op_id="d1")
    with pytest.raises(NotFound):
        await store.delete_message(alice, "c", "m3", None, 41)

    page = await store.messages_page(bob, "c", None, 2)
    assert [m.id for m in page.messages] == ["m2", "m4"] and page.has_more
    assert page.total_count == 4
    older = await store.messages_page(bob, "c", page.messages[0].seq, 10)
    assert [m.id for m in older.messages] == ["m0", "m1"] and not older.has_more
    conv = (await store.list_conversations(bob)).conversations[0]
    assert (conv.unread, conv.message_count, conv.last_seq) == (4, 4, 5)

    snap = await store.snapshot(bob, 1)  # m4 (seq 5); below it m3 (seq 4) deleted, m1 edited
    assert snap.epoch == store.epoch and snap.head == (await store.feed_state(bob)).head
    assert [m.id for m in snap.messages["c"]] == ["m4"]
    assert snap.deleted == {"c": [4]}
    assert [m.id for m in snap.edited.get("c", [])] == ["m1"]

    read = (await store.mark_read(bob, "c", 3, 50)).value
    assert isinstance(read, p.ReadResult) and (read.read_seq, read.unread) == (3, 1)
    again = await store.mark_read(bob, "c", 2, 51)  # never backwards
    assert again.changes == [] and again.value.read_seq == 3  # type: ignore[attr-defined]


# --- search ----------------------------------------------------------------------------------


async def test_search_every_term_last_as_prefix_newest_first(store: Storage) -> None:
    ids = await add_users(store, "alice", "bob", "carol")
    alice, carol = ids["alice"], ids["carol"]
    await store.create_conversation(alice, create("c", members=("bob",)), 1)
    await store.create_conversation(carol, create("d"), 1)
    bodies = [
        "Deploy on Friday",
        "deploy the café on friday evening",
        "Friday: no deploy",
        "nothing here",
        "DEPLOYMENT friday",
    ]
    for i, body in enumerate(bodies):
        await store.send_message(alice, "c", p.MessageCreate(id=f"m{i}", body=body), 10 + i)
    await store.send_message(carol, "d", p.MessageCreate(id="x", body="deploy friday"), 20)

    hits = await store.search_messages(ids["bob"], ["deploy", "fri"], None, 10)
    assert [m.id for m in hits.messages] == ["m2", "m1", "m0"]  # newest first, not carol's
    assert [m.id for m in (await store.search_messages(alice, ["cafe"], None, 10)).messages] == [
        "m1"
    ]
    assert (await store.search_messages(alice, ["depl"], None, 10)).messages[0].id == "m4"
    assert (await store.search_messages(alice, ["eploy"], None, 10)).messages == []

    first = await store.search_messages(alice, ["friday"], None, 2)
    assert [m.id for m in first.messages] == ["m4", "m2"] and first.next_before is not None
    rest = await store.search_messages(alice, ["friday"], first.next_before, 2)
    assert [m.id for m in rest.messages] == ["m1", "m0"]

    await store.delete_message(alice, "c", "m2", None, 30)
    await store.edit_message(alice, "c", "m0", p.MessagePatch(base_version=1, body="gone"), 31)
    after = await store.search_messages(alice, ["deploy", "friday"], None, 10)
    assert [m.id for m in after.messages] == ["m1"]
    assert (await store.search_messages(alice, [], None, 10)).messages == []


# --- sessions --------------------------------------------------------------------------------


def pair(tag: str, now: int) -> NewSession:
    return NewSession(f"refresh-{tag}", now + 100_000, f"access-{tag}", now + 10_000)


async def test_sessions_rotate_replay_reuse_and_revoke(store: Storage) -> None:
    ids = await add_users(store, "alice")
    alice = ids["alice"]
    await store.start_session("s1", alice, pair("1", 0), 0)
    info = await store.access_info("access-1", 5)
    assert info is not None and (info.user_id, info.username, info.session) == (
        alice,
        "alice",
        "s1",
    )
    assert await store.access_info("access-1", 20_000) is None  # expired
    assert await store.access_info("nope", 5) is None

    def successor(tag: str) -> Callable[[str, int], NewSession]:
        return lambda session, generation: pair(tag, 100)

    first = await store.rotate_refresh("refresh-1", "s1", successor("2"), 100, 5_000)
    assert first.outcome is Rotated.ROTATED and first.session == "s1"
    assert first.generation == 1
    assert first.user is not None and first.user.user_id == alice
    replay = await store.rotate_refresh("refresh-1", "s1", successor("2"), 200, 5_000)
    assert replay.outcome is Rotated.REPLAYED
    assert await store.access_info("access-2", 300) is not None
    reuse = await store.rotate_refresh("refresh-1", "s1", successor("x"), 60_000, 5_000)
    assert reuse.outcome is Rotated.REUSED
    assert not await store.session_live("s1", 60_001)
    assert await store.access_info("access-2", 60_001) is None
    gone = await store.rotate_refresh("refresh-2", "s1", successor("y"), 60_002, 5_000)
    assert gone.outcome is Rotated.INVALID

    # A token found by the session id it names alone: OLDER, with what the caller needs to
    # check it (server.auth.Tokens does), and nothing changed.
    await store.start_session("s4", alice, pair("5", 0), 0)
    await store.rotate_refresh("refresh-5", "s4", successor("6"), 100, 5_000)
    older = await store.rotate_refresh("unknown", "s4", successor("z"), 200, 5_000)
    assert (older.outcome, older.session, older.generation, older.user_id) == (
        Rotated.OLDER,
        "s4",
        1,
        alice,
    )
    assert await store.session_live("s4", 300)
    revoked_s4 = await store.revoke_sessions(alice, "s4", 301)
    assert revoked_s4 == 1
    assert (await store.rotate_refresh("unknown", "s4", successor("z"), 302, 5_000)).outcome is (
        Rotated.INVALID
    )

    await store.start_session("s2", alice, pair("3", 0), 0)
    await store.start_session("s3", alice, pair("4", 0), 0)
    assert await store.session_live("s2", 1) and await store.session_live("", 1)
    assert await store.revoke_sessions(alice, "s2", 2) == 1
    assert await store.revoke_sessions(alice, None, 3) == 1  # s3; s1 and s2 already ended
    assert await store.access_info("access-4", 4) is None


async def test_racing_refreshes_of_one_token_rotate_once(store: Storage) -> None:
    ids = await add_users(store, "alice")
    await store.start_session("s1", ids["alice"], pair("1", 0), 0)
    outcomes = await asyncio.gather(
        *(
            store.rotate_refresh("refresh-1", "s1", lambda s, g: pair("2", 100), 100, 5_000)
            for _ in range(4)
        )
    )
    assert sorted(r.outcome.value for r in outcomes) == ["replayed"] * 3 + ["rotated"]
