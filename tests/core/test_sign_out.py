"""Signing out of a remote server (docs/architecture.md §2.6): nothing unsent is lost without
the caller's choice; then the server session ends, the keyring entry and the cache go, and every
other process of the profile lets go of the cache first."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from core import protocol as p
from core.credentials import SERVICE
from core.sign_out import (
    NotSent,
    SignedOutElsewhere,
    SignOutResult,
    UnsentActions,
    cache_dir,
    unsent_words,
)
from tests.support.keyrings import MemoryKeyring
from tests.support.live_server import PASSWORD, LiveServer
from tests.support.procs import ROOT
from tests.support.waiting import wait_until


async def refresh_status(server: LiveServer, token: str) -> int:
    async with httpx.AsyncClient(base_url=server.url + p.API_PREFIX) as c:
        return (await c.post("/auth/refresh", json={"refresh_token": token})).status_code


async def live_with_one_unsent(live_server: LiveServer, clients, ring: MemoryKeyring):  # type: ignore[no-untyped-def]
    a = await clients(live_server.url, "alice", "d1")
    await wait_until(lambda: a.status.state == "live", what="live")
    conv = await a.create_conversation("Plans")
    await a.wait_synced()
    assert ring.get_password(SERVICE, a.config.profile_key)
    live_server.stop()
    await a.send_message(conv.id, "not sent yet")
    return a, conv


async def test_unsent_actions_are_never_dropped_without_a_choice(
    live_server, clients, ring
) -> None:
    a, _conv = await live_with_one_unsent(live_server, clients, ring)
    with pytest.raises(UnsentActions) as refused:
        await a.sign_out()
    assert str(refused.value) == "1 message has not been sent yet"
    assert [e.body.get("body") for e in a.unsent()] == ["not sent yet"]
    assert ring.get_password(SERVICE, a.config.profile_key)  # nothing happened
    assert cache_dir(a.config).is_dir()
    assert a.status.state != "offline"


async def test_send_then_sign_out(live_server, clients, ring) -> None:
    a, conv = await live_with_one_unsent(live_server, clients, ring)
    with pytest.raises(NotSent) as gave_up:
        await a.send_unsent(timeout=0.5)
    assert gave_up.value.reason == "unreachable" and len(gave_up.value.entries) == 1
    assert "Couldn't reach the server" in str(gave_up.value)
    live_server.restart()
    await a.send_unsent(timeout=15)
    assert a.unsent() == []
    snap = await live_server.snapshot("alice")
    assert [m["body"] for m in snap["messages"][conv.id]] == ["not sent yet"]
    token = ring.get_password(SERVICE, a.config.profile_key)
    assert token is not None

    done = await a.sign_out()

    assert done.revoked and done.problem is None and done.discarded == 0
    assert done.cache_removed and done.others_closed
    assert ring.get_password(SERVICE, a.config.profile_key) is None
    assert not cache_dir(a.config).exists()
    assert await refresh_status(live_server, token) == 401  # the session is over on the server


async def test_sign_out_everywhere_ends_the_other_devices_sessions_too(
    live_server, clients, ring
) -> None:
    a = await clients(live_server.url, "alice", "d1")
    await wait_until(lambda: a.status.state == "live", what="live")
    async with httpx.AsyncClient(base_url=live_server.url + p.API_PREFIX) as c:
        other = await c.post("/auth/token", json={"username": "alice", "password": PASSWORD})
    other_refresh = other.json()["refresh_token"]  # alice's phone, say
    token = ring.get_password(SERVICE, a.config.profile_key)
    assert token is not None

    done = await a.sign_out(everywhere=True)

    assert done.revoked and done.problem is None
    assert await refresh_status(live_server, token) == 401
    assert await refresh_status(live_server, other_refresh) == 401  # the phone too


async def test_discard_then_sign_out_while_the_server_is_down(live_server, clients, ring) -> None:
    a, conv = await live_with_one_unsent(live_server, clients, ring)
    token = ring.get_password(SERVICE, a.config.profile_key)
    assert token is not None
    files = [cache_dir(a.config) / n for n in ("cache.db", "cache.db-wal", "cache.db-shm")]
    assert all(f.exists() for f in files)

    done = await a.sign_out(discard=True, revoke_timeout=1.0)

    assert done.discarded == 1 and not done.revoked
    assert done.problem == "the server could not be reached"
    assert done.cache_removed and not any(f.exists() for f in files)
    assert ring.get_password(SERVICE, a.config.profile_key) is None
    live_server.restart()
    snap = await live_server.snapshot("alice")
    assert snap["messages"].get(conv.id, []) == []  # dropped, never sent
    assert await refresh_status(live_server, token) == 200  # (why the user is told)


async def test_a_conflict_held_action_is_not_sent_by_waiting(live_server, clients, ring) -> None:
    a = await clients(live_server.url, "alice", "d1")
    await wait_until(lambda: a.status.state == "live", what="live")
    conv = await a.create_conversation("Plans")
    await a.wait_synced()
    held = a.store.enqueue("patch", conv.id, {"title": "X", "base_version": 1})
    a.store.hold_chain(conv.id, held.id)
    with pytest.raises(NotSent) as gave_up:
        await a.send_unsent(timeout=5)
    assert gave_up.value.reason == "held"
    assert str(gave_up.value) == "1 change has to wait for your answer to a conflict first"


def close_on_signing_out(client, told: list[str], name: str) -> None:  # type: ignore[no-untyped-def]
    """What the app does when another process signs out: close (windows, then the client)."""

    def let_go() -> None:
        told.append(name)
        assert client.status.state == "offline"  # it stopped syncing at once
        asyncio.get_running_loop().create_task(client.close())

    client.events.signing_out.connect(let_go)


@pytest.mark.parametrize("from_leader", [True, False], ids=["from-leader", "from-follower"])
async def test_every_other_process_of_the_profile_lets_go_first(
    live_server, clients, ring, from_leader: bool
) -> None:
    leader = await clients(live_server.url, "alice", "d1")
    await wait_until(lambda: leader.status.state == "live", what="live")
    follower = await clients(live_server.url, "alice", "d1")  # same profile and cache: one bus
    await wait_until(lambda: follower.status.role == "follower", what="it follows")
    me, other = (leader, follower) if from_leader else (follower, leader)
    told: list[str] = []
    close_on_signing_out(other, told, "other")
    token = ring.get_password(SERVICE, me.config.profile_key)
    assert token is not None

    done = await me.sign_out()

    assert told == ["other"]
    assert done.others_closed and done.cache_removed and done.revoked
    assert other.store.db is not None and _closed(other)
    assert not cache_dir(me.config).exists()
    assert ring.get_password(SERVICE, me.config.profile_key) is None
    assert await refresh_status(live_server, token) == 401


async def test_a_process_that_does_not_let_go_keeps_the_cache(live_server, clients, ring) -> None:
    a = await clients(live_server.url, "alice", "d1")
    await wait_until(lambda: a.status.state == "live", what="live")
    b = await clients(live_server.url, "alice", "d1")  # never closes
    await wait_until(lambda: b.status.role == "follower", what="it follows")
    done = await a.sign_out(others_timeout=0.5)
    assert not done.others_closed and not done.cache_removed
    assert cache_dir(a.config).is_dir()  # b still has it open
    assert done.revoked  # the session ends all the same
    assert b.status.state == "offline"


async def test_a_second_process_of_the_profile_closes_first(live_server, clients, ring) -> None:
    a = await clients(live_server.url, "alice", "d1")
    await wait_until(lambda: a.status.state == "live", what="live")
    env = {**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    dirs = (str(a.config.data_dir), str(a.config.runtime_dir))
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.core._sign_out_child", live_server.url, *dirs],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        await wait_until(lambda: len(a.sync_bus.members()) == 2, timeout=20, what="2 on the bus")
        done = await a.sign_out()
        code = await asyncio.to_thread(child.wait, 20)
    finally:
        if child.poll() is None:
            child.kill()
    out = child.stdout.read() if child.stdout else ""
    assert code == 0, out
    lines = [line for line in out.splitlines() if not line.startswith("ready")]
    assert lines == ["let go offline", "closed"], out
    assert done.others_closed and done.cache_removed and done.revoked
    assert not cache_dir(a.config).exists()


def _closed(client) -> bool:  # type: ignore[no-untyped-def]
    try:
        client.store.db.execute("SELECT 1")
    except sqlite3.ProgrammingError:
        return True
    return False


def test_unsent_words() -> None:
    from core.model import OutboxEntry

    def e(op: str) -> OutboxEntry:
        return OutboxEntry(1, op, "c", {}, 0)

    assert unsent_words([e("send"), e("send"), e("patch")]) == "2 messages and 1 change"
    assert unsent_words([e("read")]) == "1 change"


def test_cache_dir_is_where_the_client_keeps_it(tmp_path: Path) -> None:
    from core import ClientConfig

    cfg = ClientConfig(server_url="http://x", data_dir=tmp_path, username="u")
    assert cache_dir(cfg) == tmp_path / "profiles" / cfg.profile_key


def test_the_sign_out_message_survives_the_bus_json() -> None:
    import json

    import msgspec

    from core.sync_messages import SigningOut, decode, encode

    message = SigningOut(by="m1")
    assert decode(json.loads(json.dumps(encode(message)))) == message
    with pytest.raises(msgspec.ValidationError):
        decode({"t": "sign_out"})


async def test_two_processes_signing_out_at_once_agree_on_one(live_server, clients, ring) -> None:
    a = await clients(live_server.url, "alice", "d1")
    await wait_until(lambda: a.status.state == "live", what="live")
    b = await clients(live_server.url, "alice", "d1")
    await wait_until(lambda: b.status.role == "follower", what="it follows")
    outcomes = await asyncio.gather(a.sign_out(), b.sign_out(), return_exceptions=True)
    gave_way = [o for o in outcomes if isinstance(o, SignedOutElsewhere)]
    done = [o for o in outcomes if isinstance(o, SignOutResult)]
    assert len(gave_way) == 1 and len(done) == 1, outcomes
    assert done[0].others_closed and done[0].cache_removed and done[0].revoked
    assert ring.get_password(SERVICE, a.config.profile_key) is None
    assert _closed(a) and _closed(b)
