"""What a generic SSE client (a browser's ``EventSource``) relies on: every control event that
moves the stream's position carries an ``id``, so a cut anywhere resumes from the right place;
the headers proxies obey; a spread ``retry``; an explicit ``expired`` before the stream ends."""

from __future__ import annotations

from tests.support.server_harness import API, Harness, MakeServer, event_id
from tests.support.sse import Event, RawStream


def seqs(events: list[Event]) -> list[int]:
    return [e.json()["seq"] for e in events]


async def test_fresh_hello_id_resumes_what_was_written_during_a_cut(srv: Harness) -> None:
    """The probe's case: hello at head N, cut, changes N+1.., a reconnect with hello's id."""
    conv = (await srv.create("alice"))["conversation"]
    for i in range(3):
        await srv.send("alice", conv["id"], f"before {i}")
    s = await srv.stream("alice")
    assert s.hello["head"] == 4 and s.hello["resumed"] is False
    hello_id = s.items[0].id  # type: ignore[union-attr]
    assert hello_id == event_id(srv, 4)
    await s.aclose()  # cut between hello and the first change
    for i in range(2):
        await srv.send("alice", conv["id"], f"during {i}")
    # What a browser does: reconnect with the last id it saw, hello's.
    s2 = await srv.stream("alice", last_event_id=hello_id)
    assert s2.hello["resumed"] is True and s2.hello["head"] == 6
    got = await s2.changes(2)
    assert seqs(got) == [5, 6]
    assert [e.json()["data"]["message"]["body"] for e in got] == ["during 0", "during 1"]


async def test_resumed_hello_id_is_the_cursor_not_the_head(srv: Harness) -> None:
    """hello comes before the backlog: a cut inside the backlog must not skip the rest of it."""
    conv = (await srv.create("alice"))["conversation"]
    for i in range(9):
        await srv.send("alice", conv["id"], f"m{i}")
    for form in (event_id(srv, 3), "3"):  # Last-Event-ID, and ?since= with a bare seq
        s = (
            await srv.stream("alice", last_event_id=form)
            if ":" in form
            else await srv.stream("alice", since=form)
        )
        assert s.hello["head"] == 10
        assert s.items[0].id == event_id(srv, 3)  # type: ignore[union-attr]
        first = await s.changes(4)  # then the connection is cut in the middle of the backlog
        assert seqs(first) == [4, 5, 6, 7]
        await s.aclose()
        s2 = await srv.stream("alice", last_event_id=first[-1].id)
        assert s2.items[0].id == first[-1].id  # type: ignore[union-attr]
        assert seqs(await s2.changes(3)) == [8, 9, 10]
        await s2.aclose()


async def test_reset_carries_the_head_so_it_is_not_repeated(srv: Harness) -> None:
    conv = (await srv.create("alice"))["conversation"]
    await srv.send("alice", conv["id"])
    s = await srv.stream("alice", last_event_id=f"{srv.epoch + 1}:1")  # a foreign epoch
    assert s.items[0].id is None  # type: ignore[union-attr]
    reset = await s.expect("reset")
    assert reset.json() == {"reason": "epoch_changed", "head": 2}
    assert reset.id == event_id(srv, 2)
    await s.aclose()
    await srv.send("alice", conv["id"], "after the reset")
    # The client full-synced to the head; a reconnect with the reset's id is a plain resume.
    s2 = await srv.stream("alice", last_event_id=reset.id)
    assert s2.hello["resumed"] is True
    [e] = await s2.changes(1)
    assert e.json()["seq"] == 3


async def test_a_cut_between_hello_and_reset_brings_the_reset_again(srv: Harness) -> None:
    """hello has no id when a reset follows: the browser keeps its old (unusable) id and the
    reconnect is reset again, instead of silently resuming from a head it never synced to."""
    await srv.create("alice")
    bad = event_id(srv, 999)
    for _ in range(2):
        s = await srv.stream("alice", last_event_id=bad)
        assert s.items[0].id is None  # type: ignore[union-attr]
        assert (await s.expect("reset")).json()["reason"] == "cursor_ahead"
        await s.aclose()


async def test_retry_is_spread_around_two_seconds(srv: Harness) -> None:
    retries = set()
    for _ in range(12):
        s = await srv.stream("alice")  # checks 1500 <= retry <= 2500
        retries.add(s.items[0].retry)  # type: ignore[union-attr]
        await s.aclose()
    assert len(retries) > 1, retries


async def test_stream_headers_on_the_wire(srv: Harness) -> None:
    raw = await RawStream.open(
        srv.thread.host, srv.thread.port, f"{API}/events", srv.users["alice"].auth
    )
    try:
        await raw.read_headers()
        assert raw.status == 200
        assert raw.headers["cache-control"] == "no-cache, no-transform"
        assert raw.headers["x-accel-buffering"] == "no"
        assert "connection" not in raw.headers, raw.headers
        hello = await raw.read_until_event("hello")
        assert hello.id == event_id(srv, 0)
    finally:
        raw.close()


async def test_expired_then_closed_and_a_fresh_token_resumes(make_server: MakeServer) -> None:
    h = await make_server(access_ttl_s=3, reauth_lead_s=1)
    await h.login("alice")  # the token's 3 s start now
    conv = (await h.create("alice"))["conversation"]
    s = await h.stream("alice")
    start = s.items[0].id  # type: ignore[union-attr]
    await h.send("alice", conv["id"], "one")
    [one] = await s.changes(1)
    assert (await s.expect("reauth", timeout=3)).json() == {"expires_at": s.hello["expires_at"]}
    expired = await s.expect("expired", timeout=3)
    assert expired.json() == {"expires_at": s.hello["expires_at"]}
    assert expired.id is None
    await s.closed(timeout=2)
    await h.login("alice")  # a fresh credential (the first one is dead now)
    await h.send("alice", conv["id"], "two")
    s2 = await h.stream("alice", last_event_id=one.id)
    [two] = await s2.changes(1)
    assert two.json()["data"]["message"]["body"] == "two"
    assert start == event_id(h, 1)
