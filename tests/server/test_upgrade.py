"""Upgrades keep the server's data: a 0.1.0 database opens with today's server (which migrates
it), answers for the old data and takes new writes; a newer server's database is refused, with
a message and an exit status from the CLI, and left untouched."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import httpx
import pytest

from server.app import create_app
from server.auth import now_ms
from server.runner import ServerThread
from server.settings import Settings
from server.storage import DB_VERSION, DatabaseTooNew, SQLiteStorage
from tests.fixtures import v010
from tests.support.server_cli import cli, free_port

API = "/api/v1"


def schema_of(path: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
        ).fetchall()
    return [(t, n, " ".join((s or "").split())) for t, n, s in rows]


def versions_of(path: Path) -> tuple[int, str | None]:
    with sqlite3.connect(path) as db:
        user_version = db.execute("PRAGMA user_version").fetchone()[0]
        has_meta = db.execute("SELECT 1 FROM sqlite_master WHERE name='meta'").fetchone()
        row = (
            db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if has_meta
            else None
        )
    return user_version, row[0] if row else None


async def test_a_010_database_serves_its_data_and_takes_writes(tmp_path: Path) -> None:
    data = tmp_path / "server"
    db_path = v010.make_server_db(data / "concord.db", now_ms()).path
    thread = ServerThread(create_app(Settings(data_dir=data, durable=False)))
    await asyncio.to_thread(thread.start)
    try:
        async with httpx.AsyncClient(base_url=thread.url + API, timeout=20) as c:
            alice = {"Authorization": f"Bearer {v010.ACCESS_TOKEN}"}  # issued by 0.1.0
            r = await c.get("/snapshot", params={"messages": 50}, headers=alice)
            assert r.status_code == 200, r.text
            snap = r.json()
            assert (snap["epoch"], snap["head"]) == (v010.EPOCH, v010.ALICE_HEAD)
            [conv] = snap["conversations"]
            assert conv["id"] == v010.CONV and conv["title"] == "Plans"
            assert (conv["version"], conv["message_count"], conv["unread"]) == (1, 2, 0)
            assert conv["members"] == ["alice", "bob"]
            # 0.1.0's messages, with the fields step 3 added: never edited, not deleted.
            fresh = {"version": 1, "edited_at": None, "deleted": False}
            assert snap["messages"][v010.CONV] == [{**v010.MSG1, **fresh}, {**v010.MSG2, **fresh}]

            r = await c.get("/changes", params={"since": f"{v010.EPOCH}:0"}, headers=alice)
            assert r.status_code == 200, r.text
            page = r.json()
            assert [ch["seq"] for ch in page["changes"]] == [1, 2, 3, 4]
            assert page["changes"][1]["data"] == {"message": v010.MSG1, "read_seq": 1}
            assert (page["head"], page["min_retained"], page["has_more"]) == (4, 1, False)

            # Sessions and passwords of 0.1.0 still work (and expired ones still do not).
            r = await c.post("/auth/refresh", json={"refresh_token": v010.REFRESH_TOKEN})
            assert r.status_code == 200, r.text
            successor = r.json()["refresh_token"]  # the old token became a session (step 5)
            r = await c.post("/auth/refresh", json={"refresh_token": successor})
            assert r.status_code == 200, r.text
            r = await c.post("/auth/refresh", json={"refresh_token": "an-expired-refresh-token"})
            assert r.status_code == 401
            r = await c.post("/auth/token", json={"username": "bob", "password": v010.PASSWORD})
            assert r.status_code == 200, r.text
            bob = {"Authorization": f"Bearer {r.json()['access_token']}"}

            # A PATCH with an Idempotency-Key (a table 0.1.0 did not have), and its retry.
            patch = {"base_version": 1, "title": "Upgraded"}
            key = {**alice, "Idempotency-Key": "op-after-upgrade"}
            first = await c.patch(f"/conversations/{v010.CONV}", json=patch, headers=key)
            again = await c.patch(f"/conversations/{v010.CONV}", json=patch, headers=key)
            assert first.status_code == again.status_code == 200, (first.text, again.text)
            assert again.json() == first.json()
            assert first.json()["conversation"]["version"] == 2
            assert first.json()["seq"] == v010.ALICE_HEAD + 1

            # Both feeds go on from where 0.1.0 left them.
            r = await c.get("/changes", params={"since": f"{v010.EPOCH}:3"}, headers=bob)
            [change] = r.json()["changes"]
            assert (change["seq"], change["kind"]) == (4, "conversation.upserted")
            assert change["data"]["title"] == "Upgraded"
            r = await c.post(
                f"/conversations/{v010.CONV}/messages",
                json={"id": v010.M3, "body": "after the upgrade"},
                headers=bob,
            )
            assert r.status_code == 201 and r.json()["message"]["seq"] == 3
    finally:
        await asyncio.to_thread(thread.stop)
    assert versions_of(db_path) == (DB_VERSION, str(DB_VERSION))
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT value FROM meta WHERE key='epoch'").fetchone() == ("424242",)
        assert db.execute("SELECT op_id, kind FROM operations").fetchall() == [
            ("op-after-upgrade", "patch")
        ]


async def test_a_fresh_database_gets_the_same_schema_as_an_upgraded_one(tmp_path: Path) -> None:
    old = v010.make_server_db(tmp_path / "old" / "concord.db", now_ms()).path
    for path in (old, tmp_path / "new" / "concord.db"):
        storage = SQLiteStorage(path, synchronous_full=False)
        await storage.open()
        await storage.close()
    assert schema_of(old) == schema_of(tmp_path / "new" / "concord.db")
    want = (DB_VERSION, str(DB_VERSION))
    assert versions_of(old) == versions_of(tmp_path / "new" / "concord.db") == want


@pytest.mark.parametrize("meta_only", [False, True], ids=["user_version", "meta"])
async def test_a_newer_database_is_refused_and_left_untouched(
    tmp_path: Path, meta_only: bool
) -> None:
    path = v010.make_server_db(tmp_path / "concord.db", now_ms()).path
    if meta_only:  # the version 0.1.0 kept, written by a newer server that only updated it
        with sqlite3.connect(path) as db:
            db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(DB_VERSION + 1),))
    else:
        v010.set_version(path, DB_VERSION + 1, meta=True)
    before = schema_of(path)
    storage = SQLiteStorage(path, synchronous_full=False)
    with pytest.raises(DatabaseTooNew) as caught:
        await storage.open()
    await storage.close()
    newer = DB_VERSION + 1
    assert f"newer Concord server (schema {newer}; this server knows {DB_VERSION})" in str(
        caught.value
    )
    assert (caught.value.found, caught.value.known) == (newer, DB_VERSION)
    assert schema_of(path) == before  # no operations table: nothing was migrated
    assert versions_of(path) == ((0, str(newer)) if meta_only else (newer, str(newer)))


def test_the_cli_reports_a_newer_database_without_a_traceback(tmp_path: Path) -> None:
    data = tmp_path / "data"
    v010.make_server_db(data / "concord.db", now_ms())
    v010.set_version(data / "concord.db", 7, meta=True)
    serve = cli("serve", "--data-dir", str(data), "--port", str(free_port()))
    add = cli("add-user", "carol", "--data-dir", str(data), stdin="a password\n")
    for r in (serve, add):
        assert r.returncode == 3, (r.returncode, r.stderr)
        assert r.stderr.startswith("error: the database "), r.stderr
        assert f"newer Concord server (schema 7; this server knows {DB_VERSION})" in r.stderr
        assert "Traceback" not in r.stderr
    assert versions_of(data / "concord.db") == (7, "7")
