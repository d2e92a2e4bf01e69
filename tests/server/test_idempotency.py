"""PATCH and DELETE take an ``Idempotency-Key``: the server remembers which operation made which
version, so a retry whose answer was lost gets the first answer back (not a 409 against its own
change), and nothing is applied or published twice."""

from __future__ import annotations

import asyncio

from tests.support.server_harness import Harness, assert_error


def key(n: int) -> dict[str, str]:
    return {"Idempotency-Key": f"00000000-0000-4000-8000-{n:012d}"}


async def test_a_retried_patch_gets_its_first_answer_and_applies_once(srv: Harness) -> None:
    cid = (await srv.create("alice", title="v1", members=["bob"]))["conversation"]["id"]
    body = {"base_version": 1, "title": "mine"}
    first = await srv.request("alice", "PATCH", f"/conversations/{cid}", json=body, headers=key(1))
    assert first.status_code == 200, first.text
    head = await srv.head("alice")
    again = await srv.request("alice", "PATCH", f"/conversations/{cid}", json=body, headers=key(1))
    assert again.status_code == 200, again.text
    assert again.json() == first.json()  # the same version, the same change seq
    assert await srv.head("alice") == head  # nothing appended twice
    # Without the key the same request is stale: the row is at version 2 now.
    r = await srv.patch("alice", cid, **body)
    assert r.status_code == 409 and r.json()["error"]["current"]["title"] == "mine"
    # Bob's change after ours: the retry still answers what it did then.
    assert (await srv.patch("bob", cid, base_version=2, title="bob's")).status_code == 200
    late = await srv.request("alice", "PATCH", f"/conversations/{cid}", json=body, headers=key(1))
    assert late.json() == first.json()
    assert (await srv.conversations("alice"))["conversations"][0]["title"] == "bob's"


async def test_concurrent_retries_of_one_operation_apply_it_once(srv: Harness) -> None:
    cid = (await srv.create("alice"))["conversation"]["id"]
    body = {"base_version": 1, "pinned": True}
    answers = await asyncio.gather(
        *[
            srv.request("alice", "PATCH", f"/conversations/{cid}", json=body, headers=key(2))
            for _ in range(8)
        ]
    )
    assert {r.status_code for r in answers} == {200}
    assert len({r.text for r in answers}) == 1
    assert (await srv.conversations("alice"))["conversations"][0]["version"] == 2


async def test_a_retried_delete_gets_its_first_answer(srv: Harness) -> None:
    cid = (await srv.create("alice"))["conversation"]["id"]
    path = f"/conversations/{cid}?base_version=1"
    first = await srv.request("alice", "DELETE", path, headers=key(3))
    assert first.status_code == 200, first.text
    again = await srv.request("alice", "DELETE", path, headers=key(3))
    assert (again.status_code, again.json()) == (200, first.json())
    assert_error(await srv.request("alice", "DELETE", path), 404, "not_found")


async def test_keys_are_per_user_and_per_request(srv: Harness) -> None:
    a = (await srv.create("alice", members=["bob"]))["conversation"]["id"]
    b = (await srv.create("alice"))["conversation"]["id"]
    r = await srv.request(
        "alice",
        "PATCH",
        f"/conversations/{a}",
        json={"base_version": 1, "title": "x"},
        headers=key(4),
    )
    assert r.status_code == 200
    # The same key for another conversation: refused, nothing changed.
    r = await srv.request(
        "alice",
        "PATCH",
        f"/conversations/{b}",
        json={"base_version": 1, "title": "y"},
        headers=key(4),
    )
    assert_error(r, 422, "idempotency_key_reused")
    titles = {c["id"]: c["title"] for c in (await srv.conversations("alice"))["conversations"]}
    assert titles[b] != "y"
    # Another user's equal key is another operation.
    r = await srv.request(
        "bob",
        "PATCH",
        f"/conversations/{a}",
        json={"base_version": 2, "title": "bob"},
        headers=key(4),
    )
    assert r.status_code == 200 and r.json()["conversation"]["title"] == "bob"


async def test_a_malformed_key_is_400(srv: Harness) -> None:
    cid = (await srv.create("alice"))["conversation"]["id"]
    for bad in ("", "x" * 129, "has space", "naïve"):
        r = await srv.request(
            "alice",
            "PATCH",
            f"/conversations/{cid}",
            json={"base_version": 1, "title": "t"},
            headers={"Idempotency-Key": bad.encode("utf-8")},
        )
        assert_error(r, 400, "invalid_idempotency_key")
    assert (await srv.conversations("alice"))["conversations"][0]["version"] == 1
