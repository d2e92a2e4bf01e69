"""Sessions (docs/architecture.md §4.9): refresh tokens rotate on every use; a spent one comes
back with the same successor within the grace window, and otherwise revokes its whole session;
``auth/logout`` and ``auth/logout-all`` end sessions with their access tokens and open streams."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from server import admin
from tests.support.server_harness import Harness, MakeServer, User, assert_error
from tests.support.waiting import wait_until


async def refresh(h: Harness, token: str) -> httpx.Response:
    return await h.client.post("/auth/refresh", json={"refresh_token": token})


async def refreshed(h: Harness, token: str) -> dict[str, Any]:
    r = await refresh(h, token)
    assert r.status_code == 200, r.text
    return dict(r.json())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def works(h: Harness, access: str) -> bool:
    r = await h.client.get("/conversations", headers=bearer(access))
    assert r.status_code in (200, 401), r.text
    return r.status_code == 200


async def second_session(h: Harness, name: str) -> User:
    """Another device of the same account: a sign-in of its own."""
    first = h.users[name]
    saved = (first.token, first.refresh_token, first.expires_at)
    other = await h.login(name)
    device = User(name, other.id, other.token, other.refresh_token, other.expires_at)
    first.token, first.refresh_token, first.expires_at = saved
    return device


async def test_every_refresh_rotates_and_each_successor_works(srv: Harness) -> None:
    alice = srv.users["alice"]
    token = alice.refresh_token
    seen = {token}
    for _ in range(3):
        body = await refreshed(srv, token)
        assert body["refresh_token"] not in seen
        assert body["refresh_expires_at"] > body["expires_at"]
        assert await works(srv, body["access_token"])
        token = body["refresh_token"]
        seen.add(token)
    assert await srv.metric("concord_token_refreshes_total", outcome="rotated") == 3


async def test_a_retry_within_the_grace_window_gets_the_same_successor(srv: Harness) -> None:
    """The issue's probe: one refresh token sent 20 times at once. Every answer is the same
    pair (a lost answer retried is safe) and the session lives on."""
    alice = srv.users["alice"]
    answers = await asyncio.gather(*(refresh(srv, alice.refresh_token) for _ in range(20)))
    assert Counter(r.status_code for r in answers) == {200: 20}
    bodies = {(r.json()["access_token"], r.json()["refresh_token"]) for r in answers}
    assert len(bodies) == 1
    [(access, successor)] = bodies
    assert await works(srv, access) and await works(srv, alice.token)
    assert await srv.metric("concord_token_refreshes_total", outcome="rotated") == 1
    assert await srv.metric("concord_token_refreshes_total", outcome="replayed") == 19
    # The successor is current: it rotates as usual.
    assert (await refreshed(srv, successor))["refresh_token"] != successor


async def test_a_spent_token_after_its_successor_was_used_revokes_the_session(
    srv: Harness,
) -> None:
    alice = srv.users["alice"]
    other = await second_session(srv, "alice")
    stream = await srv.stream("alice")
    first = await refreshed(srv, alice.refresh_token)
    second = await refreshed(srv, first["refresh_token"])

    # A thief replays the first token: the whole family ends, the thief gets nothing.
    assert_error(await refresh(srv, alice.refresh_token), 401, "invalid_token")
    assert await srv.metric("concord_token_refreshes_total", outcome="reused") == 1
    assert_error(await refresh(srv, second["refresh_token"]), 401, "invalid_token")
    for access in (alice.token, first["access_token"], second["access_token"]):
        assert not await works(srv, access)
    expired = await stream.expect("expired", timeout=5)
    assert expired.id is None
    await stream.closed(timeout=5)
    # Another device of the same account is another session: untouched.
    assert await works(srv, other.token)
    assert (await refreshed(srv, other.refresh_token))["refresh_token"]


async def test_an_older_generation_is_recognised_by_its_session(srv: Harness) -> None:
    alice = srv.users["alice"]
    t1 = (await refreshed(srv, alice.refresh_token))["refresh_token"]
    t2 = (await refreshed(srv, t1))["refresh_token"]
    t3 = await refreshed(srv, t2)
    assert_error(await refresh(srv, alice.refresh_token), 401, "invalid_token")  # generation 0
    assert_error(await refresh(srv, t3["refresh_token"]), 401, "invalid_token")
    assert not await works(srv, t3["access_token"])


async def test_a_token_that_only_names_a_session_cannot_end_it(srv: Harness) -> None:
    """A session's id is no secret (stream tickets carry it): a made-up token naming it is
    refused, and the session lives on. Only one of its real, spent tokens ends it."""
    alice = srv.users["alice"]
    sid = alice.refresh_token.split(".")[0]
    spent = alice.refresh_token
    current = (await refreshed(srv, spent))["refresh_token"]
    current = (await refreshed(srv, current))["refresh_token"]
    secret = spent.split(".")[1]
    near = secret[:10] + ("B" if secret[10] == "A" else "A") + secret[11:]  # one character off
    for forged in (f"{sid}.forged", f"{sid}.{near}", f"{sid}."):
        assert_error(await refresh(srv, forged), 401, "invalid_token")
    assert await srv.metric("concord_token_refreshes_total", outcome="invalid") == 3
    assert await srv.metric("concord_token_refreshes_total", outcome="reused") == 0
    assert (await refreshed(srv, current))["refresh_token"]  # still the session's


async def test_after_the_grace_window_a_spent_token_revokes(make_server: MakeServer) -> None:
    h = await make_server(refresh_grace_s=0.3)
    alice = h.users["alice"]
    spent_at = time.monotonic()
    successor = await refreshed(h, alice.refresh_token)
    await wait_until(lambda: time.monotonic() - spent_at > 0.5, what="the grace window")
    assert_error(await refresh(h, alice.refresh_token), 401, "invalid_token")
    assert_error(await refresh(h, successor["refresh_token"]), 401, "invalid_token")


async def test_grace_never_exceeds_thirty_seconds(make_server: MakeServer) -> None:
    h = await make_server(refresh_grace_s=3600)
    assert h.ctx.tokens.grace_ms == 30_000


async def test_logout_ends_this_session_its_streams_and_tickets(srv: Harness) -> None:
    alice = srv.users["alice"]
    other = await second_session(srv, "alice")
    stream = await srv.stream("alice")
    ticket = (await srv.post("alice", "/auth/stream-ticket")).json()["ticket"]
    other_stream = await srv.stream("alice", token=other.token)

    r = await srv.post("alice", "/auth/logout")
    assert r.status_code == 200, r.text
    assert r.json() == {"sessions": 1}
    assert not await works(srv, alice.token)
    assert_error(await refresh(srv, alice.refresh_token), 401, "invalid_token")
    await stream.expect("expired", timeout=5)
    await stream.closed(timeout=5)
    r = await srv.client.get("/events", params={"ticket": ticket})
    assert_error(r, 401, "invalid_ticket")
    # The other device goes on: its stream still delivers.
    created = await srv.create("bob", members=["alice"])
    [change] = await other_stream.changes(1)
    assert change.json()["data"]["id"] == created["conversation"]["id"]
    assert await works(srv, other.token)
    # Logging out again with the dead token is a 401, not a 500.
    assert_error(await srv.post("alice", "/auth/logout"), 401, "invalid_token")


async def test_logout_all_ends_every_session_of_the_caller_only(srv: Harness) -> None:
    alice = srv.users["alice"]
    other = await second_session(srv, "alice")
    streams = [await srv.stream("alice"), await srv.stream("alice", token=other.token)]
    bob_stream = await srv.stream("bob")
    r = await srv.post("alice", "/auth/logout-all")
    assert r.status_code == 200, r.text
    assert r.json() == {"sessions": 2}
    for s in streams:
        await s.expect("expired", timeout=5)
    for access, token in ((alice.token, alice.refresh_token), (other.token, other.refresh_token)):
        assert not await works(srv, access)
        assert_error(await refresh(srv, token), 401, "invalid_token")
    assert await works(srv, srv.users["bob"].token)
    await srv.create("bob")
    assert len(await bob_stream.changes(1)) == 1


async def test_revoke_sessions_beside_the_running_server_holds_within_the_recheck(
    make_server: MakeServer, tmp_path: Path
) -> None:
    """``concord-server user revoke-sessions`` writes the database, not the process: the server
    stops trusting the access tokens it checked, and ends their streams, within
    ``token_recheck_s`` (plus a heartbeat for a stream)."""
    h = await make_server(token_recheck_s=0.3, heartbeat_s=0.3)
    alice = h.users["alice"]
    stream = await h.stream("alice")
    assert await works(h, alice.token)  # checked and remembered
    db = h.settings.database_path
    assert await asyncio.to_thread(admin.revoke_sessions, db, "alice") == 1
    revoked_at = time.monotonic()
    await stream.expect("expired", timeout=5)
    assert not await works(h, alice.token)
    assert time.monotonic() - revoked_at < 3
    assert_error(await refresh(h, alice.refresh_token), 401, "invalid_token")
    assert await works(h, h.users["bob"].token)
