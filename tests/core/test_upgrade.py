"""Upgrades keep the user's cache: a 0.1.0 cache opens with today's client (migrated once, even
by several processes at once), its queued actions go out and it converges with an upgraded
0.1.0 server. A newer Concord's cache never loses an unsent action or draft: holding any, it is
refused and left as it is; holding none, it is copied aside and the app starts over."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import core
from core import Client, ClientConfig
from core._migrations import CACHE_VERSION, STEPS, SchemaTooNew, migrate
from core.store import CacheTooNew, LocalStore
from server.auth import now_ms
from tests.fixtures import v010
from tests.support.convergence import assert_converged
from tests.support.live_server import LiveServer
from tests.support.waiting import wait_until


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("PRAGMA user_version").fetchone()[0])


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
    return {r[0] for r in rows if not r[0].startswith("sqlite_")}


@pytest.fixture
def server_010(tmp_path: Path) -> Iterator[LiveServer]:
    """Today's server on a database 0.1.0 wrote."""
    data = tmp_path / "server"
    v010.make_server_db(data / "concord.db", now_ms())
    server = LiveServer(data, heartbeat_s=1.0)
    yield server
    server.stop()


def cache_path(tmp_path: Path, server: LiveServer, device: str) -> Path:
    """Where the ``clients`` fixture's client for alice on ``device`` keeps its cache."""
    cfg = ClientConfig(server.url, tmp_path / f"alice-{device}", "alice", profile="upgrade")
    return Path(cfg.data_dir) / "profiles" / cfg.profile_key / "cache.db"


async def test_a_010_cache_sends_its_queued_actions_and_converges(
    tmp_path: Path, server_010: LiveServer, clients
) -> None:
    path = v010.make_cache(cache_path(tmp_path, server_010, "d1"))
    a = await clients(server_010.url, "alice", "d1", profile="upgrade")
    assert user_version(path) == CACHE_VERSION
    assert {"drafts", "own_versions"} <= tables(path)
    # At once, from the old cache: the old data and the queued actions, shown as pending.
    view = a.conversation(v010.CONV)
    assert view is not None and view.title == v010.RENAMED and view.pending
    assert [m.body for m in a.messages(v010.CONV)][:2] == ["hello from 0.1.0", "hi back ✓"]

    await wait_until(lambda: not a.store.outbox(), timeout=20, what="the 0.1.0 outbox to drain")
    snap = await server_010.snapshot("alice")
    [conv] = snap["conversations"]
    assert (conv["title"], conv["version"], conv["message_count"]) == (v010.RENAMED, 2, 3)
    assert snap["messages"][v010.CONV][-1]["body"] == v010.QUEUED_TEXT
    await assert_converged(server_010, [a])
    # Step 3 dropped 0.1.0's cursor (cached rows lack newer fields): a full sync brought the
    # server's state, and the rename went with an operation id.
    assert a.store.get("full_sync_at") != str(v010.T0)
    assert a.store.cursor() is not None and a.store.cursor()[0] == v010.EPOCH
    assert a.store.rebased(v010.CONV, 1) == 2  # own_versions: the patch made version 2
    with sqlite3.connect(server_010.data_dir / "concord.db") as db:
        assert db.execute("SELECT kind, target, version FROM operations").fetchall() == [
            ("patch", v010.CONV, 2)
        ]


def test_a_fresh_cache_gets_the_same_schema_as_an_upgraded_one(tmp_path: Path) -> None:
    def schema(path: Path) -> list[tuple[str, str]]:
        with sqlite3.connect(path) as db:
            rows = db.execute(
                "SELECT name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
            ).fetchall()
        return [(name, " ".join((sql or "").split())) for name, sql in rows]

    old = v010.make_cache(tmp_path / "old.db")
    for path in (old, tmp_path / "new.db"):
        LocalStore(path).close()
    assert schema(old) == schema(tmp_path / "new.db")
    assert user_version(old) == user_version(tmp_path / "new.db") == CACHE_VERSION == len(STEPS)


def test_a_010_entry_gets_a_durable_operation_id(tmp_path: Path) -> None:
    store = LocalStore(v010.make_cache(tmp_path / "cache.db"))
    try:
        patch = store.outbox()[0]
        assert patch.op == "patch" and "op" not in patch.body
        op_id = store.begin_attempt(patch)
        again = store.outbox()[0]
        assert again.body["op"] == op_id and again.attempts == 1
        assert store.begin_attempt(again) == op_id  # every retry carries the same key
    finally:
        store.close()


def test_processes_opening_a_010_cache_at_once_migrate_it_once(tmp_path: Path) -> None:
    path = v010.make_cache(tmp_path / "cache.db")
    seen: list[object] = []
    start = threading.Barrier(6)

    def open_one() -> None:
        start.wait()
        try:
            store = LocalStore(path)
            try:
                seen.append(([e.op for e in store.outbox()], store.cursor()))
            finally:
                store.close()
        except BaseException as exc:
            seen.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert seen == [(["patch", "send"], None)] * 6  # step 3 drops the cursor: a full sync
    assert user_version(path) == CACHE_VERSION


def test_a_failed_step_leaves_the_cache_at_the_version_before_it(tmp_path: Path) -> None:
    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("step failed")

    conn = sqlite3.connect(tmp_path / "c.db", isolation_level=None)
    try:
        with pytest.raises(RuntimeError, match="step failed"):
            migrate(conn, (STEPS[0], broken))
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        assert "half_done" not in tables(tmp_path / "c.db")
        with pytest.raises(SchemaTooNew, match=r"schema 1; this app knows 0"):
            migrate(conn, ())
    finally:
        conn.close()


def test_a_newer_cache_with_queued_actions_is_refused_and_untouched(tmp_path: Path) -> None:
    path = v010.make_cache(tmp_path / "cache.db")
    LocalStore(path).close()  # today's version, then a newer one: its two queued actions
    v010.set_version(path, 9)
    before = tables(path)
    with pytest.raises(CacheTooNew) as caught:
        LocalStore(path)
    message = str(caught.value)
    assert f"written by a newer Concord (schema 9; this app knows {CACHE_VERSION})" in message
    assert "2 thing(s) not sent yet" in message and "open this profile with the newer" in message
    assert (caught.value.found, caught.value.unsent) == (9, 2)
    assert user_version(path) == 9 and tables(path) == before  # no drafts table was added
    assert not list(tmp_path.glob("*.bak"))
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM outbox").fetchone() == (2,)


async def test_the_client_refuses_to_open_it_with_that_message(tmp_path: Path) -> None:
    cfg = ClientConfig("http://127.0.0.1:9", tmp_path / "alice", "alice", runtime_dir=tmp_path)
    path = Path(cfg.data_dir) / "profiles" / cfg.profile_key / "cache.db"
    LocalStore(v010.make_cache(path)).close()
    newer = CACHE_VERSION + 1
    v010.set_version(path, newer)
    with pytest.raises(
        core.CacheTooNew, match=rf"schema {newer}; this app knows {CACHE_VERSION}\): it holds 2"
    ):
        await Client.open(cfg)
    assert user_version(path) == newer


def test_a_newer_cache_holding_a_draft_is_refused(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "cache.db")
    store.set_draft("c1", "half a thought")
    store.close()
    v010.set_version(tmp_path / "cache.db", CACHE_VERSION + 1)
    with pytest.raises(CacheTooNew, match="1 thing"):
        LocalStore(tmp_path / "cache.db")
    assert user_version(tmp_path / "cache.db") == CACHE_VERSION + 1


def test_a_newer_cache_this_version_cannot_read_is_refused(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "cache.db") as db:
        db.execute("CREATE TABLE actions (id INTEGER PRIMARY KEY, body TEXT)")  # outbox renamed
        db.execute("PRAGMA user_version=12")
    with pytest.raises(CacheTooNew, match="holds things not sent yet") as caught:
        LocalStore(tmp_path / "cache.db")
    assert caught.value.unsent is None
    assert tables(tmp_path / "cache.db") == {"actions"}


async def test_a_newer_cache_with_nothing_unsent_starts_over_from_the_server(
    tmp_path: Path, server_010: LiveServer, clients
) -> None:
    path = cache_path(tmp_path, server_010, "d1")
    store = LocalStore(path)
    store.put("cursor", f"{v010.EPOCH}:99")
    entry = store.enqueue("read", v010.CONV, {"seq": 2})
    store.mark_acked(entry.id, 4)  # acknowledged: on the server already
    store.db.execute("CREATE TABLE from_the_future (x)")
    store.close()
    newer = CACHE_VERSION + 2
    v010.set_version(path, newer)

    a = await clients(server_010.url, "alice", "d1", profile="upgrade")
    [backup] = path.parent.glob(f"cache.db.schema{newer}-*.bak")
    assert a.store.backup == backup
    assert user_version(backup) == newer and "from_the_future" in tables(backup)
    assert user_version(path) == CACHE_VERSION and "from_the_future" not in tables(path)
    await assert_converged(server_010, [a])  # a full sync brought the server's state
    assert a.store.cursor() == (v010.EPOCH, v010.ALICE_HEAD)
    assert [m.body for m in a.messages(v010.CONV)] == ["hello from 0.1.0", "hi back ✓"]
