"""Two Clients on one cache (two "processes" of a device, here in one process): exactly one
leads; the follower's actions go out through the leader and it sees everything."""

from __future__ import annotations

from tests.support.live_server import PASSWORD
from tests.support.waiting import wait_until


async def test_follower_acts_through_the_leader(live_server, clients, tmp_path) -> None:
    leader = await clients(live_server.url, "alice", "dev")
    follower = await clients(live_server.url, "alice", "dev")
    assert leader.engine is not None and follower.engine is None
    await wait_until(lambda: follower.status.state == "live", what="the follower to show live")
    assert follower.status.role == "follower" and leader.status.role == "leader"
    assert live_server.open_streams() == 1

    conv = await follower.create_conversation("from the follower", ["bob"])
    for i in range(60):
        await follower.send_message(conv.id, f"m{i}")
    await follower.wait_synced(15)
    await wait_until(
        lambda: leader.conversation(conv.id) and leader.conversation(conv.id).message_count == 60,
        what="the leader to see all messages",
    )
    assert [m.body for m in follower.messages(conv.id)] == [f"m{i}" for i in range(60)]

    # A second device fetches older pages on demand, also from a follower.
    other = await clients(live_server.url, "alice", "phone")
    other_follower = await clients(live_server.url, "alice", "phone", password=PASSWORD)
    await wait_until(lambda: other_follower.conversation(conv.id), what="phone sees it")
    cached = other_follower.messages(conv.id)
    assert len(cached) == 50 and cached[0].body == "m10"  # the snapshot carries the last 50
    older = await other_follower.load_older(conv.id)
    assert [m.body for m in older] == [f"m{i}" for i in range(10)]
    assert len(other_follower.messages(conv.id)) == 60
    assert other.engine is not None
