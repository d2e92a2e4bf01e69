"""Drafts in the core: one per conversation in the shared cache, surviving a restart, cleared
by a send, given back by a refused send, kept for a conversation that is gone, and mirrored to
the device's other processes over the bus."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from pathlib import Path

from core import Client, ClientConfig
from core.store import LocalStore
from server.auth import now_ms
from server.storage import SQLiteStorage

from .conftest import FAST, PASSWORD, wait_until
from .procs import ClientProc

MIRROR_S = 0.3  # the budget for another window of the device to show a draft
MARGIN_S = 0.2  # a loaded test machine


def delete_behind_our_back(server, cid: str) -> None:  # type: ignore[no-untyped-def]
    """Another device deletes the conversation while this one is offline."""

    async def run() -> None:
        store = SQLiteStorage(server.data_dir / "concord.db")
        await store.open()
        await store.delete_conversation(1, cid, 1, now_ms())
        await store.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


async def test_a_draft_per_conversation_survives_a_restart(live_server, clients) -> None:
    a = await clients(live_server.url, "alice", "d1")
    seen: list[tuple[str, str]] = []
    a.on("draft_changed", lambda cid, text: seen.append((cid, text)))
    one = await a.create_conversation("one")
    two = await a.create_conversation("two")
    a.set_draft(one.id, "half a thought")
    a.set_draft(two.id, "another\nthought")
    a.set_draft(two.id, "another\nthought")  # unchanged: not announced again
    assert a.draft(one.id) == "half a thought" and a.draft(two.id) == "another\nthought"
    assert seen == [(one.id, "half a thought"), (two.id, "another\nthought")]
    a.set_draft(two.id, "")  # empty: gone from the cache
    assert a.drafts() == {one.id: "half a thought"}
    await a.close()
    again = await Client.open(a.config)  # a restart (or a crash: every write is committed)
    try:
        assert again.draft(one.id) == "half a thought" and again.draft(two.id) == ""
    finally:
        await again.close()


async def test_sending_clears_the_draft(live_server, clients) -> None:
    a = await clients(live_server.url, "alice", "d1")
    conv = await a.create_conversation("chat")
    a.set_draft(conv.id, "hello there")
    seen: list[tuple[str, str]] = []
    a.on("draft_changed", lambda cid, text: seen.append((cid, text)))
    await a.send_message(conv.id, "hello there")
    assert a.draft(conv.id) == "" and seen == [(conv.id, "")]


async def test_a_refused_send_goes_back_into_the_draft(live_server, clients) -> None:
    a = await clients(live_server.url, "alice", "d1")
    conv = await a.create_conversation("soon gone")
    await a.wait_synced(10)
    live_server.stop()
    await wait_until(lambda: a.status.state != "live", what="offline")
    await a.send_message(conv.id, "are you there?")
    a.set_draft(conv.id, "second thought")  # typed on after sending
    delete_behind_our_back(live_server, conv.id)
    errors: list = []
    a.on("error", errors.append)
    live_server.restart()
    await wait_until(lambda: errors, timeout=15, what="the send refused")
    assert errors[0].kind == "rejected" and errors[0].conversation_id == conv.id
    assert a.draft(conv.id) == "second thought\n\nare you there?"
    # The conversation is gone, its draft is not: the UI takes it (clipboard + notice).
    await wait_until(lambda: a.conversation(conv.id) is None, what="deleted")
    assert a.draft(conv.id) == "second thought\n\nare you there?"
    assert a.take_draft(conv.id) == "second thought\n\nare you there?"
    assert a.take_draft(conv.id) == "" and a.drafts() == {}


async def test_a_draft_reaches_the_devices_other_process(tmp_path: Path, live_server) -> None:
    config = ClientConfig(
        server_url=live_server.url,
        data_dir=tmp_path / "alice-desk",  # the same cache and bus as B's
        username="alice",
        password=PASSWORD,
        runtime_dir=tmp_path / "run",
        engine=FAST,
    )
    a = await Client.open(config)
    desk = tmp_path / "alice-desk"
    b = await ClientProc(live_server.url, desk, tmp_path / "run", "alice").start()
    try:
        conv = await a.create_conversation("mirrored")
        # A → B: written here, B re-reads it from the shared cache when the bus tells it.
        start = time.monotonic()
        a.set_draft(conv.id, "typed in process A")
        got = await b.wait_event("draft_changed", cid=conv.id, text="typed in process A")
        assert got["t"] - start < MIRROR_S + MARGIN_S
        assert await b.call("draft", cid=conv.id) == "typed in process A"
        # B → A, and a send in A clears it in B.
        arrived = asyncio.Event()
        a.on("draft_changed", lambda cid, text: text == "and in B" and arrived.set())
        start = time.monotonic()
        await b.call("set_draft", cid=conv.id, text="and in B")
        await asyncio.wait_for(arrived.wait(), MIRROR_S + MARGIN_S + 1)  # + the stdin hop
        assert a.draft(conv.id) == "and in B"
        await a.send_message(conv.id, "and in B")
        await b.wait_event("draft_changed", cid=conv.id, text="")
    finally:
        await b.quit()
        await a.close()


async def test_a_missed_draft_post_is_caught_up_after_a_bus_gap(live_server, clients) -> None:
    a = await clients(live_server.url, "alice", "d1")
    conv = await a.create_conversation("chat")
    seen: list[tuple[str, str]] = []
    a.on("draft_changed", lambda cid, text: seen.append((cid, text)))
    other = LocalStore(a.store.path)  # another process's write whose bus post was lost
    try:
        other.set_draft(conv.id, "written elsewhere")
    finally:
        other.close()
    a._resync()  # what the relay does on a bus gap or a failover
    assert (conv.id, "written elsewhere") in seen
