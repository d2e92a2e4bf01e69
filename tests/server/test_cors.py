"""CORS: off by default; an allow-list of origins (``--cors-origin``) with preflight."""

from __future__ import annotations

import argparse

import pytest

from server import cli
from tests.support.server_harness import Harness, MakeServer, assert_error

APP = "http://app.example:8080"
OTHER = "https://evil.example"


def preflight(origin: str, method: str = "POST", headers: str = "authorization") -> dict:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


async def test_no_cors_by_default(srv: Harness) -> None:
    r = await srv.get("alice", "/conversations", headers={"Origin": APP})
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers
    r = await srv.client.options("/auth/stream-ticket", headers=preflight(APP))
    assert "access-control-allow-origin" not in r.headers
    assert r.status_code == 405


async def test_allowed_origin_gets_preflight_and_headers(make_server: MakeServer) -> None:
    h = await make_server(cors_origins=(APP, "http://127.0.0.1:9"))
    r = await h.client.options(
        "/auth/stream-ticket", headers=preflight(APP, "POST", "authorization, content-type")
    )
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == APP
    assert "POST" in r.headers["access-control-allow-methods"]
    allowed = r.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert "access-control-allow-credentials" not in r.headers  # no cookies involved
    # Writes with an Idempotency-Key, and the feed's Last-Event-ID, pass preflight too.
    r = await h.client.options(
        "/conversations/6f1c1c1e-0000-4000-8000-000000000001",
        headers=preflight(APP, "PATCH", "authorization, content-type, idempotency-key"),
    )
    assert r.status_code == 200
    r = await h.client.options("/events", headers=preflight(APP, "GET", "last-event-id"))
    assert r.status_code == 200

    # Actual answers carry the origin, errors included (a page must be able to read a 401).
    r = await h.get("alice", "/conversations", headers={"Origin": APP})
    assert r.headers["access-control-allow-origin"] == APP
    assert "origin" in r.headers["vary"].lower()
    r = await h.post(None, "/auth/stream-ticket", headers={"Origin": APP})
    assert_error(r, 401, "unauthorized")
    assert r.headers["access-control-allow-origin"] == APP
    assert "retry-after" in r.headers.get("access-control-expose-headers", "").lower()
    # ...and the event stream too.
    ticket = (await h.post("alice", "/auth/stream-ticket")).json()["ticket"]
    async with h.client.stream(
        "GET", "/events", params={"ticket": ticket}, headers={"Origin": APP}
    ) as s:
        assert s.status_code == 200
        assert s.headers["access-control-allow-origin"] == APP


async def test_other_origins_are_refused(make_server: MakeServer) -> None:
    h = await make_server(cors_origins=(APP,))
    for origin in (OTHER, APP + "/", "http://app.example", "null"):
        r = await h.client.options("/auth/stream-ticket", headers=preflight(origin))
        assert r.status_code == 400, (origin, r.status_code)
        assert "access-control-allow-origin" not in r.headers
        r = await h.get("alice", "/conversations", headers={"Origin": origin})
        assert r.status_code == 200  # the server answers; the browser withholds it from the page
        assert "access-control-allow-origin" not in r.headers, origin
    # A header outside the list fails preflight even from the allowed origin.
    r = await h.client.options("/conversations", headers=preflight(APP, "POST", "x-evil"))
    assert r.status_code == 400


def test_cli_cors_origin_is_repeatable_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    args = cli.parser().parse_args(
        ["serve", "--cors-origin", "https://chat.example.com", "--cors-origin", "http://[::1]:8/"]
    )
    assert args.cors_origin == ["https://chat.example.com", "http://[::1]:8"]
    assert cli.parser().parse_args(["serve"]).cors_origin is None
    for bad in ("*", "chat.example.com", "https://chat.example.com/app", "ftp://x", "http://x:y"):
        with pytest.raises(argparse.ArgumentTypeError):
            cli.parse_origin(bad)
    monkeypatch.setenv("CONCORD_CORS_ORIGINS", "https://a.example, http://b.example:81")
    assert cli.origins_from_env() == ["https://a.example", "http://b.example:81"]
    monkeypatch.setenv("CONCORD_CORS_ORIGINS", "https://a.example/path")
    with pytest.raises(argparse.ArgumentTypeError):
        cli.origins_from_env()
