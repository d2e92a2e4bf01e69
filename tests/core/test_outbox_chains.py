"""A device's own edits never conflict with each other: any chain of this device's patches to
one conversation applies in order and ends in the state of the last one, across lost answers,
restarts and leader failover (with real processes: ``tests/e2e/test_processes.py``). A change
made elsewhere is a conflict: the rest of the chain is held and the user asked once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from core import Client, ClientConfig
from tests.support.live_server import FAST, PASSWORD
from tests.support.server_edits import change_behind_our_back
from tests.support.waiting import wait_until


class LoseAnswers(httpx.AsyncBaseTransport):
    """Forwards every request to the real server, but loses the answer to the first ``n``
    requests of ``method``: the server did the work, the client hears a broken connection."""

    def __init__(self, method: str, n: int = 1) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.method, self.left, self.lost = method, n, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == self.method and self.left > 0:
            self.left -= 1
            self.lost += 1
            await response.aread()
            await response.aclose()
            raise httpx.ReadError("connection lost before the answer", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def restartable(server: Any, tmp_path: Path) -> ClientConfig:
    """alice's client on one cache, for tests that close it and open it again."""
    return ClientConfig(
        server_url=server.url,
        data_dir=tmp_path / "alice-d1",
        username="alice",
        password=PASSWORD,
        runtime_dir=tmp_path / "run",
        engine=FAST,
        heartbeat_s=1.0,
    )


async def server_title(server: Any, cid: str) -> tuple[str, int]:
    snap = await server.snapshot("alice")
    (conv,) = [c for c in snap["conversations"] if c["id"] == cid]
    return conv["title"], conv["version"]


async def offline_with_a_conversation(live_server: Any, client: Client) -> str:
    conv = await client.create_conversation("zero")
    await client.wait_synced(10)
    live_server.stop()
    await wait_until(lambda: client.status.state != "live", what="the client to notice")
    return conv.id


async def test_three_renames_queued_offline_end_on_the_last(live_server, clients) -> None:
    a = await clients(live_server.url, "alice", "d1")
    conflicts: list = []
    a.events.conflict.connect(conflicts.append)
    cid = await offline_with_a_conversation(live_server, a)
    for title in ("one", "two", "three"):
        await a.rename_conversation(cid, title)
    assert a.conversation(cid).title == "three"
    live_server.restart()
    await a.wait_synced(15)
    assert await server_title(live_server, cid) == ("three", 4)
    assert (a.conversation(cid).title, a.conversation(cid).pending) == ("three", False)
    assert conflicts == [] and a.store.outbox() == []


async def test_a_lost_answer_does_not_make_the_next_patch_conflict(live_server, clients) -> None:
    lose = LoseAnswers("PATCH", n=1)
    a = await clients(live_server.url, "alice", "d1", transport=lose)
    conflicts: list = []
    a.events.conflict.connect(conflicts.append)
    conv = await a.create_conversation("zero")
    await a.wait_synced(10)
    await a.rename_conversation(conv.id, "one")  # done on the server; the answer is lost
    await a.set_pinned(conv.id, True)
    await a.rename_conversation(conv.id, "two")
    await a.wait_synced(15)
    assert lose.lost == 1
    assert await server_title(live_server, conv.id) == ("two", 4)
    view = a.conversation(conv.id)
    assert (view.title, view.pinned, view.version, view.pending) == ("two", True, 4, False)
    assert conflicts == []


async def test_a_chain_survives_a_lost_answer_and_a_restart(live_server, tmp_path: Path) -> None:
    config = restartable(live_server, tmp_path)
    config.transport = LoseAnswers("PATCH", n=100)  # every answer lost: nothing is acked
    a = await Client.open(config)
    try:
        conv = await a.create_conversation("zero")
        await a.wait_synced(10)
        await a.rename_conversation(conv.id, "one")
        await wait_until(
            lambda: any(e.attempts > 0 for e in a.store.outbox()), what="a patch attempted"
        )
        await a.rename_conversation(conv.id, "two")
        await a.rename_conversation(conv.id, "three")
    finally:
        await a.close()  # the app quits (or dies) with the chain unacknowledged
    assert (await server_title(live_server, conv.id))[0] == "one"  # done, but we never heard
    config.transport = None
    b = await Client.open(config)
    try:
        conflicts: list = []
        b.events.conflict.connect(conflicts.append)
        await b.wait_synced(15)
        assert await server_title(live_server, conv.id) == ("three", 4)
        assert b.conversation(conv.id).title == "three" and conflicts == []
    finally:
        await b.close()


async def test_a_change_elsewhere_holds_the_rest_of_the_chain_and_asks_once(
    live_server, clients
) -> None:
    a = await clients(live_server.url, "alice", "d1")
    conflicts: list = []
    a.events.conflict.connect(conflicts.append)
    cid = await offline_with_a_conversation(live_server, a)
    change_behind_our_back(live_server, cid, 1, "theirs")  # another device: version 2
    for title in ("one", "two", "three"):
        await a.rename_conversation(cid, title)
    live_server.restart()
    await wait_until(lambda: conflicts, timeout=15, what="a conflict")
    await a.wait_synced(15)  # held actions wait for the user, not for the server
    (conflict,) = conflicts
    assert conflict.mine["title"] == "three" and conflict.theirs.title == "theirs"
    assert [e.state for e in a.store.outbox()] == ["held"] * 3
    await wait_until(lambda: a.conversation(cid).title == "theirs", what="theirs shown")
    assert await server_title(live_server, cid) == ("theirs", 2)

    await a.keep_mine(conflict)
    await a.wait_synced(15)
    assert await server_title(live_server, cid) == ("three", 5)
    assert a.conversation(cid).title == "three" and len(conflicts) == 1
    assert a.store.outbox() == []


async def test_reload_drops_the_held_chain(live_server, clients) -> None:
    a = await clients(live_server.url, "alice", "d1")
    conflicts: list = []
    a.events.conflict.connect(conflicts.append)
    conv = await a.create_conversation("zero")
    await a.wait_synced(10)
    await a.rename_conversation(conv.id, "one")
    await a.wait_synced(10)  # "one" is on the server: version 2
    live_server.stop()
    await wait_until(lambda: a.status.state != "live", what="the client to notice")
    change_behind_our_back(live_server, conv.id, 2, "theirs")  # version 3, made elsewhere
    await a.rename_conversation(conv.id, "two")
    await a.delete_conversation(conv.id)
    live_server.restart()
    await wait_until(lambda: conflicts, timeout=15, what="a conflict")
    (conflict,) = conflicts
    assert conflict.mine == {"title": "two", "delete": True, "_origin": conflict.mine["_origin"]}
    await a.reload(conflict)
    await a.wait_synced(15)
    assert a.store.outbox() == []
    assert await server_title(live_server, conv.id) == ("theirs", 3)
    await wait_until(lambda: a.conversation(conv.id).title == "theirs", what="theirs stays")


async def test_a_held_chain_is_asked_again_after_a_restart(live_server, tmp_path: Path) -> None:
    config = restartable(live_server, tmp_path)
    a = await Client.open(config)
    try:
        conflicts: list = []
        a.events.conflict.connect(conflicts.append)
        cid = await offline_with_a_conversation(live_server, a)
        change_behind_our_back(live_server, cid, 1, "theirs")
        await a.rename_conversation(cid, "mine")
        live_server.restart()
        await wait_until(lambda: conflicts, timeout=15, what="a conflict")
    finally:
        await a.close()  # quit before answering: the chain stays held in the cache
    b = await Client.open(config)
    try:
        asked: list = []
        b.events.conflict.connect(asked.append)
        await wait_until(lambda: asked, timeout=10, what="the question asked again")
        (conflict,) = asked
        assert conflict.mine["title"] == "mine" and conflict.theirs.title == "theirs"
        await b.keep_mine(conflict)
        await b.wait_synced(15)
        assert await server_title(live_server, cid) == ("mine", 3)
    finally:
        await b.close()


async def test_an_edit_made_while_asked_wins_over_the_held_one(live_server, clients) -> None:
    a = await clients(live_server.url, "alice", "d1")
    conflicts: list = []
    a.events.conflict.connect(conflicts.append)
    cid = await offline_with_a_conversation(live_server, a)
    change_behind_our_back(live_server, cid, 1, "theirs")
    await a.rename_conversation(cid, "mine")
    await a.set_pinned(cid, True)
    live_server.restart()
    await wait_until(lambda: conflicts, timeout=15, what="a conflict")
    await wait_until(lambda: a.conversation(cid).title == "theirs", what="theirs shown")
    await a.rename_conversation(cid, "newer")  # typed while the dialog is open: goes now
    await a.wait_synced(15)
    assert await server_title(live_server, cid) == ("newer", 3)
    held = [(e.state, e.body.get("title"), e.body.get("pinned")) for e in a.store.outbox()]
    assert held == [("held", None, True)]  # the held chain lost its title to the later edit
    await a.keep_mine(conflicts[0])
    await a.wait_synced(15)
    view = a.conversation(cid)
    assert (view.title, view.pinned, view.version) == ("newer", True, 4)  # never "mine"
    assert len(conflicts) == 1


async def test_keep_mine_never_overwrites_a_change_the_user_did_not_see(
    live_server, clients
) -> None:
    a = await clients(live_server.url, "alice", "d1")
    conflicts: list = []
    a.events.conflict.connect(conflicts.append)
    cid = await offline_with_a_conversation(live_server, a)
    change_behind_our_back(live_server, cid, 1, "theirs")
    await a.rename_conversation(cid, "mine")
    live_server.restart()
    await wait_until(lambda: conflicts, timeout=15, what="a conflict")
    await wait_until(lambda: a.conversation(cid).version == 2, what="theirs applied")
    live_server.stop()
    change_behind_our_back(live_server, cid, 2, "theirs, later")  # while the dialog is open
    live_server.restart()
    await a.keep_mine(conflicts[0])  # answers what it showed: version 2
    await wait_until(lambda: len(conflicts) == 2, timeout=15, what="asked again")
    assert conflicts[1].theirs.title == "theirs, later"
    assert await server_title(live_server, cid) == ("theirs, later", 3)


def test_own_versions_outlive_the_entries_that_made_them(tmp_path: Path) -> None:
    from core.store import LocalStore

    store = LocalStore(tmp_path / "cache.db")
    try:
        entry = store.enqueue("patch", "c1", {"title": "one", "base_version": 5})
        store.mark_acked(entry.id, 10, ("c1", 6))
        store.remove([entry.id])  # settled: the outbox is empty again
        # A process whose view was still at version 5 renames: it follows our version 6.
        assert store.rebased("c1", 5) == 6
        assert store.rebased("c2", 5) == 5
    finally:
        store.close()


class HangFirstPost(httpx.AsyncBaseTransport):
    """The first POST never gets an answer (a black-holed connection); the rest go through."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.hanging = asyncio.Event()
        self.hung = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and "/messages" in request.url.path and not self.hung:
            self.hung = True
            self.hanging.set()
            await asyncio.Event().wait()  # until cancelled
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_send_stuck_on_a_dead_connection_goes_again_when_the_server_is_reached(
    live_server, clients
) -> None:
    from core.outbox import STALE_SEND_S

    hang = HangFirstPost()
    a = await clients(live_server.url, "alice", "d1", transport=hang, request_timeout_s=60)
    conv = await a.create_conversation("c")
    await a.wait_synced(10)
    await a.send_message(conv.id, "hello")
    await asyncio.wait_for(hang.hanging.wait(), 10)
    await asyncio.sleep(STALE_SEND_S + 0.1)  # the send has now waited longer than a live path
    a.network_changed()  # the server is reached again on a fresh connection
    await a.wait_synced(3)  # not the request timeout (60 s here)
    assert [m.body for m in a.messages(conv.id)] == ["hello"]


class SlowPosts(httpx.AsyncBaseTransport):
    """Every message send takes ``delay_s`` on a live server (a slow link, a busy server)."""

    def __init__(self, delay_s: float) -> None:
        self.inner, self.delay_s, self.posts = httpx.AsyncHTTPTransport(), delay_s, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and "/messages" in request.url.path:
            self.posts += 1
            await asyncio.sleep(self.delay_s)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_slow_server_still_gets_every_send_through(live_server, clients) -> None:
    from core.outbox import STALE_SEND_S

    slow = SlowPosts(STALE_SEND_S * 1.6)  # slower than the first patience, live all along
    a = await clients(live_server.url, "alice", "d1", transport=slow)
    conv = await a.create_conversation("c")
    await a.wait_synced(10)
    await wait_until(lambda: a.status.state == "live", what="live")
    for i in range(4):
        await a.send_message(conv.id, f"m{i}")
    await a.wait_synced(30)
    assert [m.body for m in a.messages(conv.id)] == ["m0", "m1", "m2", "m3"]
    assert slow.posts <= 4 + 3  # patience grows: at most a few abandoned tries, then it adapts
