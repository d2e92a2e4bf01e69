"""The real server (uvicorn, the whole HTTP stack) on PostgreSQL: sign-in, a write that reaches
another member's stream, and search."""

from __future__ import annotations

from tests.support.server_harness import MakeServer


async def test_server_on_postgres_delivers_a_write(
    make_server: MakeServer, fresh_postgres: str
) -> None:
    h = await make_server(database_url=fresh_postgres)
    cid = (await h.create("alice", members=["bob"]))["conversation"]["id"]
    bob = await h.stream("bob")
    assert bob.hello["head"] == 1
    sent = await h.send("alice", cid, "hello from postgres")
    [event] = await bob.changes(1)
    change = event.json()
    assert change["kind"] == "message.created" and change["seq"] == 2
    assert change["data"]["message"]["body"] == "hello from postgres"
    assert sent["message"]["seq"] == 1
    r = await h.get("bob", "/search", params={"q": "postgr"})
    assert r.status_code == 200 and [m["id"] for m in r.json()["messages"]] == [
        sent["message"]["id"]
    ]
