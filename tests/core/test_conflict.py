"""409: our rename loses to one made elsewhere while we were offline. The server wins, the
``conflict`` event carries both versions, and "keep mine" re-applies ours on top."""

from __future__ import annotations

from tests.support.server_edits import rename_behind_our_back
from tests.support.waiting import wait_until


async def test_conflict_server_wins_then_keep_mine(live_server, clients) -> None:
    a = await clients(live_server.url, "alice", "d1")
    conflicts: list = []
    a.events.conflict.connect(conflicts.append)
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
