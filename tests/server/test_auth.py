"""Sign-in, bearer tokens, refresh, expiry (REST and streams) and login throttling."""

from __future__ import annotations

import time

import pytest

from server.auth import now_ms
from tests.support.server_harness import PASSWORD, Harness, MakeServer, assert_error
from tests.support.waiting import wait_until


def wall(mono: float) -> float:
    """A monotonic timestamp from the past, as wall-clock seconds."""
    return time.time() - (time.monotonic() - mono)


async def test_sign_in_gives_working_tokens(srv: Harness) -> None:
    before = now_ms()
    r = await srv.client.post("/auth/token", json={"username": "alice", "password": PASSWORD})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"access_token", "refresh_token", "expires_at", "username", "token_type"}
    assert body["username"] == "alice" and body["token_type"] == "bearer"
    ttl_ms = srv.settings.access_ttl_s * 1000
    assert before + ttl_ms <= body["expires_at"] <= now_ms() + ttl_ms
    assert body["access_token"] != body["refresh_token"]
    r = await srv.client.get(
        "/conversations", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert r.status_code == 200
    # The scheme is case-insensitive.
    r = await srv.client.get(
        "/conversations", headers={"Authorization": f"bearer {body['access_token']}"}
    )
    assert r.status_code == 200


async def test_wrong_password_and_unknown_user_look_the_same(srv: Harness) -> None:
    wrong = await srv.client.post("/auth/token", json={"username": "alice", "password": "nope"})
    unknown = await srv.client.post("/auth/token", json={"username": "mallory", "password": "x"})
    a = assert_error(wrong, 401, "invalid_credentials")
    b = assert_error(unknown, 401, "invalid_credentials")
    assert a == b


async def test_login_throttling(make_server: MakeServer) -> None:
    h = await make_server(login_failures_per_minute=3, login=False)
    for _ in range(3):
        r = await h.client.post("/auth/token", json={"username": "alice", "password": "bad"})
        assert_error(r, 401, "invalid_credentials")
    for password in ("bad", PASSWORD):  # once throttled, even the right password waits
        r = await h.client.post("/auth/token", json={"username": "alice", "password": password})
        assert_error(r, 429, "too_many_attempts")
        assert 1 <= int(r.headers["retry-after"]) <= 61
    # Throttling is per account: bob is not affected.
    r = await h.client.post("/auth/token", json={"username": "bob", "password": PASSWORD})
    assert r.status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Basic YWxpY2U6cHc=", "Bearer not-a-token", "Token abc"],
)
async def test_missing_or_invalid_bearer_is_401(srv: Harness, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    for method, path in [
        ("GET", "/conversations"),
        ("POST", "/conversations"),
        ("GET", "/snapshot"),
        ("GET", "/changes"),
        ("GET", "/events"),
        ("GET", "/conversations/00000000-0000-4000-8000-000000000000/messages"),
    ]:
        r = await srv.client.request(method, path, headers=headers)
        code = "invalid_token" if authorization == "Bearer not-a-token" else "unauthorized"
        assert_error(r, 401, code)
        assert r.headers["www-authenticate"].startswith("Bearer")


async def test_refresh_token_is_not_an_access_token_and_vice_versa(srv: Harness) -> None:
    alice = srv.users["alice"]
    r = await srv.client.get(
        "/conversations", headers={"Authorization": f"Bearer {alice.refresh_token}"}
    )
    assert_error(r, 401, "invalid_token")
    r = await srv.client.post("/auth/refresh", json={"refresh_token": alice.token})
    assert_error(r, 401, "invalid_token")


async def test_refresh_gives_a_new_working_token(srv: Harness) -> None:
    alice = srv.users["alice"]
    r = await srv.client.post("/auth/refresh", json={"refresh_token": alice.refresh_token})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {
        "access_token",
        "expires_at",
        "token_type",
        "refresh_token",
        "refresh_expires_at",
    }
    assert body["access_token"] not in (alice.token, alice.refresh_token)
    # Rotated: a new refresh token of the same session (tests/server/test_refresh_rotation.py).
    assert body["refresh_token"] != alice.refresh_token
    assert body["refresh_token"].split(".")[0] == alice.refresh_token.split(".")[0]
    assert body["expires_at"] > now_ms()
    r = await srv.client.get(
        "/conversations", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert r.status_code == 200
    s = await srv.stream("alice", token=body["access_token"])
    assert s.hello["expires_at"] == body["expires_at"]


@pytest.mark.parametrize("token", ["garbage", "x" * 256])
async def test_bad_refresh_token_is_401(srv: Harness, token: str) -> None:
    r = await srv.client.post("/auth/refresh", json={"refresh_token": token})
    assert_error(r, 401, "invalid_token")


async def test_expired_access_token_rest_and_stream(make_server: MakeServer) -> None:
    h = await make_server(access_ttl_s=2, reauth_lead_s=60)
    alice = await h.login("alice")
    await h.create("alice")  # so there is a change to catch up on
    s = await h.stream("alice", since="0")
    assert s.hello["expires_at"] == alice.expires_at
    # The token expires in less than reauth_lead_s: reauth comes first, before any change.
    reauth = await s.event()
    assert reauth.type == "reauth"
    assert reauth.json() == {"expires_at": alice.expires_at}
    [change] = await s.changes(1)
    assert change.json()["seq"] == 1
    # At expiry the stream says why it ends (a browser would otherwise retry with a dead token).
    expired = await s.expect("expired", timeout=5)
    assert expired.json() == {"expires_at": alice.expires_at}
    assert expired.id is None  # the browser's last event id stays on the last change
    closed = await s.closed(timeout=2)
    # Closed at expiry: not before, and not much after.
    assert alice.expires_at / 1000 - 0.05 <= wall(closed.at) <= alice.expires_at / 1000 + 1.5
    await wait_until(lambda: now_ms() > alice.expires_at + 20, "the token's expiry", timeout=5)

    r = await h.get("alice", "/conversations")
    assert_error(r, 401, "invalid_token")
    r = await h.refused_stream("alice")
    assert_error(r, 401, "invalid_token")

    r = await h.client.post("/auth/refresh", json={"refresh_token": alice.refresh_token})
    assert r.status_code == 200
    alice.token = r.json()["access_token"]
    assert (await h.get("alice", "/conversations")).status_code == 200
    s2 = await h.stream("alice")
    assert s2.hello["expires_at"] == r.json()["expires_at"]


async def test_reauth_is_sent_reauth_lead_before_expiry(make_server: MakeServer) -> None:
    h = await make_server(access_ttl_s=2, reauth_lead_s=1)
    alice = await h.login("alice")
    s = await h.stream("alice")
    reauth = await s.expect("reauth", timeout=3)
    due = (alice.expires_at / 1000) - 1
    assert due - 0.05 <= wall(reauth.at) <= due + 0.75
    await s.expect("expired", timeout=3)
    closed = await s.closed(timeout=2)
    assert wall(closed.at) >= alice.expires_at / 1000 - 0.05
