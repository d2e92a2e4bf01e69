"""``GET search``: the caller's messages only, newest first, paged with ``before``; every word
matches a whole word (the last as a prefix) ignoring case and diacritics; whatever a user typed
is text, never query syntax; bad parameters are 4xx JSON errors; edits and deletes reach the
index."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.server_harness import Harness, assert_error


async def search(h: Harness, user: str, q: str, **params: Any) -> dict[str, Any]:
    r = await h.get(user, "/search", params={"q": q, **params})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def bodies(page: dict[str, Any]) -> list[str]:
    return [m["body"] for m in page["messages"]]


async def test_only_the_callers_conversations_are_searched(srv: Harness) -> None:
    shared = (await srv.create("alice", "shared", members=["bob"]))["conversation"]["id"]
    private = (await srv.create("carol", "carol only"))["conversation"]["id"]
    await srv.send("alice", shared, "Déploiement vendredi")
    await srv.send("carol", private, "deploy secret plans")
    assert bodies(await search(srv, "bob", "deplo")) == ["Déploiement vendredi"]
    assert bodies(await search(srv, "alice", "DEPLOIEMENT")) == ["Déploiement vendredi"]
    assert bodies(await search(srv, "carol", "deplo")) == ["deploy secret plans"]
    assert bodies(await search(srv, "bob", "secret")) == []
    # Removed from the conversation: its messages are no longer found.
    version = (await srv.conversations("alice"))["conversations"][0]["version"]
    r = await srv.patch("alice", shared, base_version=version, members=["alice"])
    assert r.status_code == 200, r.text
    assert bodies(await search(srv, "bob", "deplo")) == []


async def test_pages_come_newest_first_and_follow_before(srv: Harness) -> None:
    cid = (await srv.create("alice", "log"))["conversation"]["id"]
    for i in range(7):
        await srv.send("alice", cid, f"build {i} passed")
    await srv.send("alice", cid, "unrelated")
    first = await search(srv, "alice", "build pass", limit=3)
    assert bodies(first) == ["build 6 passed", "build 5 passed", "build 4 passed"]
    assert first["next_before"] is not None
    second = await search(srv, "alice", "build pass", limit=3, before=first["next_before"])
    assert bodies(second) == ["build 3 passed", "build 2 passed", "build 1 passed"]
    third = await search(srv, "alice", "build pass", limit=3, before=second["next_before"])
    assert bodies(third) == ["build 0 passed"] and third["next_before"] is None
    assert [m["seq"] for m in third["messages"]] == [1]


@pytest.mark.parametrize(
    "q",
    ['"', 'say "hi', "a OR b", "NEAR(x y", "x AND", "*", "col:x", "^start", "(((", "-x", "a+b"],
)
async def test_query_syntax_typed_by_a_user_is_text(srv: Harness, q: str) -> None:
    cid = (await srv.create("alice", "odd"))["conversation"]["id"]
    await srv.send("alice", cid, 'she said "hi" OR left; NEAR(x y) col:x a+b')
    page = await search(srv, "alice", q)
    assert isinstance(page["messages"], list)


async def test_edits_and_deletes_reach_the_index(srv: Harness) -> None:
    cid = (await srv.create("alice", "edits"))["conversation"]["id"]
    sent = await srv.send("alice", cid, "first draft of the plan")
    mid = sent["message"]["id"]
    r = await srv.request(
        "alice",
        "PATCH",
        f"/conversations/{cid}/messages/{mid}",
        json={"base_version": 1, "body": "final roadmap"},
    )
    assert r.status_code == 200, r.text
    assert bodies(await search(srv, "alice", "draft")) == []
    assert bodies(await search(srv, "alice", "roadm")) == ["final roadmap"]
    r = await srv.request("alice", "DELETE", f"/conversations/{cid}/messages/{mid}")
    assert r.status_code == 200, r.text
    assert bodies(await search(srv, "alice", "roadmap")) == []


async def test_a_deleted_conversation_is_no_longer_found(srv: Harness) -> None:
    cid = (await srv.create("alice", "gone"))["conversation"]["id"]
    await srv.send("alice", cid, "ephemeral words")
    r = await srv.request("alice", "DELETE", f"/conversations/{cid}?base_version=1")
    assert r.status_code == 200, r.text
    assert bodies(await search(srv, "alice", "ephemeral")) == []


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "invalid_parameter"),
        ({"q": "   "}, "invalid_parameter"),
        ({"q": "x" * 257}, "invalid_parameter"),
        ({"q": "x", "limit": "0"}, "invalid_parameter"),
        ({"q": "x", "limit": "101"}, "invalid_parameter"),
        ({"q": "x", "limit": "ten"}, "invalid_parameter"),
        ({"q": "x", "before": "-1"}, "invalid_parameter"),
        ({"q": "x", "before": "9" * 30}, "invalid_parameter"),
    ],
)
async def test_bad_parameters_are_400(srv: Harness, params: dict[str, str], code: str) -> None:
    assert_error(await srv.get("alice", "/search", params=params), 400, code)


async def test_search_needs_a_token_and_is_described(srv: Harness) -> None:
    assert (await srv.get(None, "/search", params={"q": "x"})).status_code == 401
    punctuation = await search(srv, "alice", "!!! ???")  # no words: nothing, not an error
    assert punctuation == {"messages": [], "next_before": None}
    doc = (await srv.get(None, "/openapi.json")).json()
    op = doc["paths"]["/api/v1/search"]["get"]
    assert {p["name"] for p in op["parameters"]} == {"q", "before", "limit"}
