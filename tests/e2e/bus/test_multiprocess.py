"""Real processes: bulk delivery, exactly-once and order per sender, 3 x 10,000 messages."""

from __future__ import annotations

import asyncio

from tests.support.bus_child import Child

N = 10_000


async def test_three_processes_10k_each_every_message_once_in_order(
    scope: str, runtime_dir: str, children: list[Child]
) -> None:
    names = ["p1", "p2", "p3"]
    for name in names:
        children.append(await Child.spawn(scope, runtime_dir, name, channels="bulk"))
    assert sum(ch.events[0]["is_leader"] for ch in children) == 1
    for ch in children:
        others = [n for n in names if n != ch.name]
        ch.send(op="expect", counts={f"bulk/{n}": N for n in others})
    for ch in children:
        ch.send(op="post", ch="bulk", n=N, batch=500)
    for ch in children:
        await ch.wait("posted", timeout=60)
    for ch in children:
        await ch.wait("complete", timeout=60)
    for ch in children:
        stats = await ch.call("stats", op="stats")
        assert stats["errors"] == []
        for n in names:
            key = f"bulk/{n}"
            if n == ch.name:
                assert key not in stats["recv"]  # never the posting object (nor its process)
                continue
            assert stats["recv"][key] == {"first": 1, "last": N, "count": N, "bad": 0}
    await asyncio.gather(*(ch.stop() for ch in children))


async def test_state_handshake_across_processes(
    scope: str, runtime_dir: str, children: list[Child]
) -> None:
    leader = await Child.spawn(scope, runtime_dir, "leader", channels="prefs")
    children.append(leader)
    await leader.call("providing", op="provide", name="prefs", value={"theme": "dark"})
    for i in range(5):
        await leader.call("sent", op="send", ch="prefs", data={"n": i})
    late = await Child.spawn(scope, runtime_dir, "late")
    children.append(late)
    got = await late.call("state", op="request_state", name="prefs")
    snapshot, seq = got["value"]
    assert snapshot == {"theme": "dark"} and seq == 5  # the leader's five posts came first
    missing = await late.call("state", op="request_state", name="nobody-provides", timeout=0.5)
    assert missing["value"] is None
