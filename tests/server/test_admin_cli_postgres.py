"""The operators' ``user`` commands on a PostgreSQL deployment, through the real
``concord-server`` entry point, against a server running on the same database: what they change
reaches it (refresh at once, a checked access token within ``token_recheck_s``). ``backup`` and
``restore`` refuse a PostgreSQL URL and point to pg_dump/pg_restore and ``new-epoch``."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from server.admin import AdminError, list_users
from tests.support.server_cli import CLI, ENV, cli
from tests.support.server_harness import MakeServer
from tests.support.services import with_database
from tests.support.waiting import wait_until

RECHECK_S = 0.5


async def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(cli, *args, stdin=stdin)


async def users(url: str) -> dict[str, list[str]]:
    r = await run("user", "list", "--database", url)
    assert r.returncode == 0, r.stderr
    header, *rows = r.stdout.splitlines()
    assert header.split() == ["USER", "CREATED", "(UTC)", "SESSIONS", "STATE"]
    return {row.split()[0]: row.split()[3:] for row in rows}


async def test_user_commands_on_postgres_reach_a_running_server(
    make_server: MakeServer, fresh_postgres: str
) -> None:
    url = fresh_postgres
    h = await make_server(database_url=url, token_recheck_s=RECHECK_S)
    first_refresh = h.users["alice"].refresh_token
    await h.login("alice")  # a second device
    assert await users(url) == {
        "alice": ["2", "active"],
        "bob": ["1", "active"],
        "carol": ["1", "active"],
    }
    for name in ("alice", "bob"):  # the server has checked (and now trusts) these tokens
        assert (await h.get(name, "/conversations")).status_code == 200

    async def refused(name: str) -> bool:
        return (await h.get(name, "/conversations")).status_code == 401

    r = await run("user", "revoke-sessions", "alice", "--database", url)
    assert r.returncode == 0, r.stderr
    assert "revoked 2 sessions of alice" in r.stdout
    for refresh in (first_refresh, h.users["alice"].refresh_token):
        r2 = await h.post(None, "/auth/refresh", json={"refresh_token": refresh})
        assert r2.status_code == 401
    await wait_until(lambda: refused("alice"), "alice's access token refused", timeout=10)
    assert (await users(url))["alice"] == ["0", "active"]

    # CONCORD_DATABASE_URL names the database as --database does.
    env = {**ENV, "CONCORD_DATABASE_URL": url}
    r = await asyncio.to_thread(
        subprocess.run,
        [str(CLI), "user", "reset-password", "alice"],
        input="new pass\n",
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    assert "new password for alice; 0 sessions revoked" in r.stdout
    sign_in = {"username": "alice", "password": "new pass"}
    assert (await h.post(None, "/auth/token", json=sign_in)).status_code == 200
    sign_in["password"] = "old one"
    assert (await h.post(None, "/auth/token", json=sign_in)).status_code == 401

    bob_refresh = h.users["bob"].refresh_token
    r = await run("user", "remove", "bob", "--database", url)
    assert r.returncode == 0, r.stderr
    assert "removed bob: sign-in disabled, 1 sessions revoked (history kept)" in r.stdout
    r2 = await h.post(None, "/auth/refresh", json={"refresh_token": bob_refresh})
    assert r2.status_code == 401
    await wait_until(lambda: refused("bob"), "bob's access token refused", timeout=10)
    assert (await users(url))["bob"] == ["0", "removed"]
    # The name stays taken: nobody can become "bob" in bob's old conversations.
    r = await run("add-user", "bob", "--database", url, stdin="x\n")
    assert r.returncode == 1 and "exists" in r.stderr
    assert (await h.get("carol", "/conversations")).status_code == 200  # nobody else touched

    for command in ("remove", "revoke-sessions"):
        r = await run("user", command, "nobody", "--database", url)
        assert r.returncode == 1 and "no user 'nobody'" in r.stderr
    r = await run("user", "reset-password", "alice", "--database", url, stdin="\n")
    assert r.returncode == 1 and "empty" in r.stderr


def test_errors_on_postgres(fresh_postgres: str, postgres_url: str) -> None:
    missing = with_database(postgres_url, "concord_no_such_database")
    r = cli("user", "list", "--database", missing)
    assert r.returncode == 1 and "cannot connect to" in r.stderr
    assert "concord:***@" in r.stderr  # the password is not printed
    r = cli("user", "list", "--database", fresh_postgres)  # reachable, never migrated
    assert r.returncode == 1 and "concord-server migrate" in r.stderr
    for args in (("backup", "copy.dump"), ("restore", "copy.dump")):
        r = cli(*args, "--database", fresh_postgres)
        assert r.returncode == 2, r.stderr
        assert "pg_dump" in r.stderr and "pg_restore" in r.stderr and "new-epoch" in r.stderr


def test_postgres_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as without concord[scale]
    with pytest.raises(AdminError, match=r"concord\[scale\]"):
        list_users("postgresql://concord@127.0.0.1/concord")
