"""Stream tickets: a browser's credential for ``GET events?ticket=`` and nothing else."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import httpx
import pytest

from server.auth import now_ms
from server.storage import SQLiteStorage
from server.tickets import StreamTickets
from tests.support.server_harness import API, Harness, MakeServer, assert_error, event_id
from tests.support.sse import SSEStream


async def ticket_for(h: Harness, user: str) -> dict:
    r = await h.post(user, "/auth/stream-ticket")
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert set(body) == {"ticket", "expires_at"}
    return body


async def open_with_ticket(
    h: Harness, ticket: str, last_event_id: str | None = None
) -> tuple[httpx.Response, SSEStream]:
    headers = {"Accept": "text/event-stream"}
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    req = h.client.build_request(
        "GET", "/events", params={"ticket": ticket}, headers=headers, timeout=httpx.Timeout(10)
    )
    r = await h.client.send(req, stream=True)
    if r.status_code != 200:
        await r.aread()
        await r.aclose()
        return r, None  # type: ignore[return-value]
    s = SSEStream(r)
    h.streams.append(s)
    return r, s


async def test_ticket_opens_the_callers_feed_and_serves_reconnections(srv: Harness) -> None:
    alice = srv.users["alice"]
    before = now_ms()
    t = await ticket_for(srv, "alice")
    assert before + 290_000 <= t["expires_at"] <= now_ms() + 300_000  # minutes, not seconds
    assert t["expires_at"] <= alice.expires_at  # never past the token that asked
    conv = (await srv.create("alice"))["conversation"]
    r, s = await open_with_ticket(srv, t["ticket"])
    assert r.status_code == 200
    hello = await s.expect("hello")
    assert hello.json()["expires_at"] == t["expires_at"]
    assert hello.id == event_id(srv, 1)
    await srv.send("alice", conv["id"], "one")
    [one] = await s.changes(1)
    await s.aclose()
    await srv.send("alice", conv["id"], "two")
    # The browser's own reconnection: same URL (same ticket) plus Last-Event-ID.
    r2, s2 = await open_with_ticket(srv, t["ticket"], last_event_id=one.id)
    assert r2.status_code == 200
    assert (await s2.expect("hello")).json()["resumed"] is True
    [two] = await s2.changes(1)
    assert two.json()["data"]["message"]["body"] == "two"
    # bob's feed is not alice's: his ticket shows none of her changes.
    _rb, sb = await open_with_ticket(srv, (await ticket_for(srv, "bob"))["ticket"])
    assert (await sb.expect("hello")).json()["head"] == 0


async def test_ticket_needs_a_bearer_token(srv: Harness) -> None:
    r = await srv.post(None, "/auth/stream-ticket")
    assert_error(r, 401, "unauthorized")
    t = await ticket_for(srv, "alice")
    # A ticket cannot mint tickets.
    r = await srv.client.post(
        "/auth/stream-ticket", headers={"Authorization": f"Bearer {t['ticket']}"}
    )
    assert_error(r, 401, "invalid_token")


async def test_ticket_is_refused_for_everything_but_the_feed(srv: Harness) -> None:
    conv = (await srv.create("alice"))["conversation"]
    ticket = (await ticket_for(srv, "alice"))["ticket"]
    q = {"ticket": ticket}
    bearer = {"Authorization": f"Bearer {ticket}"}
    reads = ["/conversations", "/changes", "/snapshot", f"/conversations/{conv['id']}/messages"]
    for path in [*reads, "/search?q=x"]:
        for kwargs in ({"params": q}, {"headers": bearer}):
            r = await srv.client.get(path, **kwargs)
            assert r.status_code == 401, (path, r.status_code, r.text)
    message = {"id": "6f1c1c1e-0000-4000-8000-0000000000aa", "body": "forged"}
    writes = [
        ("POST", "/conversations", {"id": "6f1c1c1e-0000-4000-8000-0000000000bb", "title": "x"}),
        ("POST", f"/conversations/{conv['id']}/messages", message),
        ("PATCH", f"/conversations/{conv['id']}", {"base_version": 1, "title": "y"}),
        ("POST", f"/conversations/{conv['id']}/read", {"seq": 1}),
        ("DELETE", f"/conversations/{conv['id']}?base_version=1", None),
    ]
    for method, path, body in writes:
        for kwargs in ({"params": q}, {"headers": bearer}):
            r = await srv.client.request(method, path, json=body, **kwargs)
            assert r.status_code == 401, (method, path, r.text)
    # On the feed itself a ticket is not a bearer token either.
    r = await srv.client.get("/events", headers=bearer)
    assert_error(r, 401, "invalid_token")
    # Nothing was written.
    assert (await srv.head("alice")) == 1


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # a changed signature
        lambda t: "x" + t,  # a changed payload
        lambda t: t.replace(".", ""),
        lambda t: "",
        lambda t: "a.b",
        lambda t: "é." + t.split(".")[1],
        lambda t: t + "." + t,
        lambda t: "x" * 5000,
    ],
)
async def test_forged_or_malformed_tickets_are_401(srv: Harness, mangle) -> None:
    ticket = (await ticket_for(srv, "alice"))["ticket"]
    r, _ = await open_with_ticket(srv, mangle(ticket))
    assert_error(r, 401, "invalid_ticket")


async def test_a_ticket_for_another_user_cannot_be_made_by_hand(srv: Harness) -> None:
    ticket = (await ticket_for(srv, "alice"))["ticket"]
    payload, mac = ticket.split(".")
    claims = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
    bob = srv.users["bob"]
    forged = claims.replace(f"[{srv.users['alice'].id},", f"[{bob.id},").replace("alice", "bob")
    assert forged != claims
    forged_payload = base64.urlsafe_b64encode(forged.encode()).rstrip(b"=").decode()
    r, _ = await open_with_ticket(srv, f"{forged_payload}.{mac}")
    assert_error(r, 401, "invalid_ticket")


async def test_ticket_expiry_sends_expired_and_the_ticket_is_then_refused(
    make_server: MakeServer,
) -> None:
    h = await make_server(stream_ticket_ttl_s=1.0, reauth_lead_s=0.3)
    t = await ticket_for(h, "alice")
    _r, s = await open_with_ticket(h, t["ticket"])
    assert (await s.expect("hello")).json()["expires_at"] == t["expires_at"]
    await s.expect("reauth", timeout=3)
    expired = await s.expect("expired", timeout=3)
    assert expired.json() == {"expires_at": t["expires_at"]}
    await s.closed(timeout=2)
    r2, _ = await open_with_ticket(h, t["ticket"])
    assert_error(r2, 401, "invalid_ticket")
    # A new ticket works again.
    r3, _s3 = await open_with_ticket(h, (await ticket_for(h, "alice"))["ticket"])
    assert r3.status_code == 200


async def test_ticket_never_reaches_the_access_log(srv: Harness) -> None:
    ticket = (await ticket_for(srv, "alice"))["ticket"]
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    access = logging.getLogger("uvicorn.access")
    level, handler = access.level, Collect()
    access.setLevel(logging.INFO)  # before the connection opens: uvicorn decides per connection
    access.addHandler(handler)
    try:
        async with httpx.AsyncClient(base_url=srv.thread.url + API) as c:
            async with c.stream("GET", "/events", params={"ticket": ticket, "since": "0"}) as r:
                assert r.status_code == 200
            r = await c.get("/events", params={"ticket": "forged.ticket"})
            assert r.status_code == 401
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
    events_lines = [line for line in lines if "/events" in line]
    assert len(events_lines) == 2, lines
    for line in events_lines:
        assert "ticket=[redacted]" in line, line
        assert ticket not in line and "forged" not in line, line
    assert "since=0" in events_lines[0]  # the rest of the query stays readable


async def test_the_ticket_secret_survives_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "concord.db"
    secrets = []
    for _ in range(2):
        storage = SQLiteStorage(db, synchronous_full=False)
        await storage.open()
        secrets.append(await storage.server_secret("stream_ticket"))
        assert await storage.server_secret("other") != secrets[-1]
        await storage.close()
    assert secrets[0] == secrets[1] and len(secrets[0]) == 32
    from server.storage import TokenInfo

    a, b = StreamTickets(secrets[0]), StreamTickets(secrets[1])
    ticket, _ = a.issue(TokenInfo(user_id=1, username="u", expires_at=now_ms() + 60_000), now_ms())
    assert b.verify(ticket, now_ms()) is not None
    assert StreamTickets.ephemeral().verify(ticket, now_ms()) is None
