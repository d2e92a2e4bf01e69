"""Failover with real processes: kill -9 the leader 20 times in a row (4 members kept alive)."""

from __future__ import annotations

import asyncio
import statistics
import time

from tests.support.bus_child import Child

KILLS = 20
MEMBERS = 4
STREAM_EVERY = 0.004  # each member posts a message every 4 ms throughout


def leader_of(children: list[Child]) -> tuple[Child, int]:
    """The child whose latest leader event says it leads, and that epoch."""
    best: tuple[int, Child] | None = None
    for ch in children:
        for e in ch.events:
            if e["ev"] == "leader" and e["is_leader"] and (best is None or e["epoch"] > best[0]):
                best = (e["epoch"], ch)
    assert best is not None
    return best[1], best[0]


async def test_kill_leader_20_times(scope: str, runtime_dir: str, children: list[Child]) -> None:
    alive: list[Child] = []
    for i in range(MEMBERS):
        child = await Child.spawn(scope, runtime_dir, f"m{i}", channels="f")
        children.append(child)
        alive.append(child)
    for child in alive:
        await child.call("streaming", op="stream", ch="f", every=STREAM_EVERY)

    times: list[float] = []
    killed: list[Child] = []
    for k in range(KILLS):
        leader, epoch = leader_of(alive)
        survivors = [c for c in alive if c is not leader]
        marks = [len(c.events) for c in survivors]
        t0 = time.monotonic()
        leader.kill()
        killed.append(leader)
        new_epoch = [
            await c.wait("leader", lambda e, ep=epoch: e["epoch"] > ep, start=m, timeout=10)
            for c, m in zip(survivors, marks, strict=True)
        ]
        times.append(max(e["t"] for e in new_epoch) - t0)
        assert len({(e["epoch"], e["leader"]) for e in new_epoch}) == 1, new_epoch
        replacement = await Child.spawn(scope, runtime_dir, f"r{k}", channels="f")
        children.append(replacement)
        await replacement.call("streaming", op="stream", ch="f", every=STREAM_EVERY)
        alive = [*survivors, replacement]
        await leader.proc.wait()

    # Let the last replacement hear from everyone, stop posting, drain every outbox (all
    # acked), wait until each receiver has each sender's last message, then compare.
    for child in alive:
        heard = {f"f/{c.name}": 1 for c in alive if c is not child}
        await child.call("complete", op="expect", counts=heard, timeout=10)
    counters = {}
    for child in alive:
        stopped = await child.call("stopped", op="stop_stream")
        counters[child.name] = stopped["counters"].get(f"f/{child.name}", 0)
    for child in alive:
        await child.call("drained", op="drain")
        assert child.events[-1]["outbox"] == 0
    expect = {f"f/{name}": n for name, n in counters.items()}
    for child in alive:
        mine = {k: v for k, v in expect.items() if k != f"f/{child.name}"}
        await child.call("complete", op="expect", counts=mine, timeout=30)
    stats = {c.name: await c.call("stats", op="stats") for c in alive}

    # 1. Leaders: one per epoch, epochs strictly increasing over the run.
    leads: dict[int, set[str]] = {}
    for child in children:
        for e in child.events:
            if e["ev"] == "leader" and e["is_leader"]:
                leads.setdefault(e["epoch"], set()).add(child.member)
    assert all(len(who) == 1 for who in leads.values()), leads
    epochs = sorted(leads)
    assert len(epochs) == KILLS + 1
    assert epochs == list(range(epochs[0], epochs[0] + KILLS + 1))
    for child in children:  # every member saw epochs only grow
        seen = [e["epoch"] for e in child.events if e["ev"] == "leader"]
        assert seen == sorted(set(seen)), (child.name, seen)

    # 2. Exactly once, in order: every live receiver got every live sender's messages.
    spawn_order = {c.name: i for i, c in enumerate(children)}
    for rname, st in stats.items():
        assert st["errors"] == [], (rname, st["errors"])
        for sname, n in counters.items():
            if sname == rname:
                continue
            got = st["recv"][f"f/{sname}"]
            assert got["bad"] == 0
            assert got["last"] == n, (rname, sname, got, n)
            assert got["count"] == n - got["first"] + 1
            if spawn_order[rname] < spawn_order[sname]:
                assert got["first"] == 1, (rname, sname, got)
        # messages of killed leaders: never duplicated or reordered (a tail may be missing)
        for dead in killed:
            got = st["recv"].get(f"f/{dead.name}")
            if got is not None:
                assert got["bad"] == 0 and got["count"] == got["last"] - got["first"] + 1

    times.sort()
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    print(
        f"\nfailover over {KILLS} kills: p50 {statistics.median(times) * 1e3:.0f} ms, "
        f"p99 {p99 * 1e3:.0f} ms, max {times[-1] * 1e3:.0f} ms"
    )
    # The 500 ms p99 target is measured by tests/bench/bus.py on a quiet machine; here, guard
    # against regressions (e.g. a heartbeat timeout creeping in) without flaking under load.
    assert statistics.median(times) <= 0.25 and times[-1] <= 2.0, times
    await asyncio.gather(*(c.stop() for c in alive))
