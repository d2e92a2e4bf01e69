"""Drafts in the core: one per conversation in the shared cache, surviving a restart, cleared
by a send, given back by a refused send, kept for a conversation that is gone, and caught up
after a bus gap. Mirrored to the device's other processes: ``tests/e2e/test_draft_mirroring.py``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures

from core import Client
from core.store import LocalStore
from server.auth import now_ms
from server.storage import SQLiteStorage
from tests.support.waiting import wait_until


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
    a.events.draft_changed.connect(lambda cid, text: seen.append((cid, text)))
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
    a.events.draft_changed.connect(lambda cid, text: seen.append((cid, text)))
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
    a.events.error.connect(errors.append)
    live_server.restart()
    await wait_until(lambda: errors, timeout=15, what="the send refused")
    assert errors[0].kind == "rejected" and errors[0].conversation_id == conv.id
    assert a.draft(conv.id) == "second thought\n\nare you there?"
    # The conversation is gone, its draft is not: the UI takes it (clipboard + notice).
    await wait_until(lambda: a.conversation(conv.id) is None, what="deleted")
    assert a.draft(conv.id) == "second thought\n\nare you there?"
    assert a.take_draft(conv.id) == "second thought\n\nare you there?"
    assert a.take_draft(conv.id) == "" and a.drafts() == {}


async def test_a_missed_draft_post_is_caught_up_after_a_bus_gap(live_server, clients) -> None:
    a = await clients(live_server.url, "alice", "d1")
    conv = await a.create_conversation("chat")
    seen: list[tuple[str, str]] = []
    a.events.draft_changed.connect(lambda cid, text: seen.append((cid, text)))
    other = LocalStore(a.store.path)  # another process's write whose bus post was lost
    try:
        other.set_draft(conv.id, "written elsewhere")
    finally:
        other.close()
    a.leadership.resync()  # what a bus gap or a failover does
    assert (conv.id, "written elsewhere") in seen
