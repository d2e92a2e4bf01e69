"""409: our rename loses to one made elsewhere while we were offline. The server wins, the
``conflict`` event carries both versions, and "keep mine" re-applies ours on top."""

from __future__ import annotations

import asyncio
import concurrent.futures

from core import protocol as p
from server.auth import now_ms
from server.storage import SQLiteStorage

from .conftest import wait_until


def rename_behind_our_back(server, cid: str, title: str) -> None:
    async def run() -> None:
        store = SQLiteStorage(server.data_dir / "concord.db")
        await store.open()
        await store.patch_conversation(
            1, cid, p.ConversationPatch(base_version=1, title=title), now_ms()
        )
        await store.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


async def test_conflict_server_wins_then_keep_mine(live_server, clients) -> None:
    a = await clients(live_server.url, "alice", "d1")
    conflicts: list = []
    a.on("conflict", conflicts.append)
    conv = await a.create_conversation("original")
    await a.wait_synced(10)
    live_server.stop()
    await wait_until(lambda: a.status.state != "live", what="the client to notice")
    rename_behind_our_back(live_server, conv.id, "theirs")  # another device, meanwhile
    await a.rename_conversation(conv.id, "mine")
    assert a.conversation(conv.id).title == "mine" and a.conversation(conv.id).pending
    live_server.restart()

    await wait_until(lambda: conflicts, timeout=15, what="a conflict event")
    (conflict,) = conflicts
    assert conflict.mine["title"] == "mine" and conflict.theirs.title == "theirs"
    assert conflict.theirs.version == 2
    await a.wait_synced(10)
    await wait_until(lambda: a.conversation(conv.id).title == "theirs", what="server wins")

    await a.keep_mine(conflict)
    await a.wait_synced(10)
    view = a.conversation(conv.id)
    assert (view.title, view.version, view.pending) == ("mine", 3, False)
    snap = await live_server.snapshot("alice")
    assert [c["title"] for c in snap["conversations"]] == ["mine"]


async def test_sync_off_keeps_everything_local(live_server, clients) -> None:
    a = await clients(live_server.url, "alice", "d1", sync=False)
    conv = await a.create_conversation("local only")
    assert a.status.state == "offline" and a.engine is None
    assert a.conversation(conv.id).pending
    assert live_server.open_streams() == 0
