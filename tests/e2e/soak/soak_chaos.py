"""The soak's chaos: network faults on the proxy (cuts, black-holes, answer drops), server
``kill -9`` + restart, leader ``kill -9`` (some right after the leader accepted work it could not
send yet), the final outage with work piling up behind it, and the heal that ends it. Each
driver draws its plan from its own seeded stream; ``World.net`` keeps one owner of the proxy's
mode at a time."""

from __future__ import annotations

import asyncio
import contextlib
import time

from tests.support.faultproxy import FaultProxy, mutating
from tests.support.waiting import wait_until

from .soak_world import Device, Member, World


def drop_if(request_line: str) -> bool:
    """Whose answers ``drop_answers`` throws away: mutations, not sign-ins."""
    return mutating(request_line) and "/auth/" not in request_line


class Chaos:
    def __init__(self, world: World) -> None:
        self.world = world

    @property
    def proxy(self) -> FaultProxy:
        assert self.world.proxy is not None, "start() the world first"
        return self.world.proxy

    async def faults(self, until: float) -> None:
        w = self.world
        rng, n = w.rng.faults, w.plan.faults
        kinds = (
            ["cut"] * (n // 3) + ["blackhole"] * (n // 3) + ["drop_answers"] * (n - 2 * (n // 3))
        )
        rng.shuffle(kinds)
        plan = [
            (rng.uniform(0.2, 0.6), k, 0.0 if k == "cut" else rng.uniform(0.15, 0.6)) for k in kinds
        ]
        scale = max(0.2, (until - time.monotonic() - 1.0) / sum(g + d for g, _, d in plan))
        for gap, kind, dur in plan:
            await asyncio.sleep(gap * scale)
            async with w.net:
                w.note(kind)
                if kind == "cut":
                    self.proxy.cut()
                else:
                    self.proxy.set_mode(kind, drop_if=drop_if)
                    await asyncio.sleep(dur * scale)
                    self.proxy.set_mode("pass")
                    w.note(f"{kind} over")
            w.fig.faults[kind] += 1

    async def server_kills(self, until: float) -> None:
        w = self.world
        start, span = time.monotonic(), until - time.monotonic()
        for i in range(w.plan.server_kills):
            at = start + span * (i + 0.5) / w.plan.server_kills + w.rng.server.uniform(-1, 1)
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            w.note("server kill -9")
            await w.server.kill()
            w.fig.server_kills += 1
            await asyncio.sleep(w.rng.server.uniform(0.2, 1.0))
            await w.server.start()
            w.note("server up")

    async def leader_kills(self, until: float) -> None:
        w = self.world
        rng, n, unsent_n = w.rng.leaders, w.plan.leader_kills, w.plan.leader_kills_unsent
        unsent = [True] * unsent_n + [False] * (n - unsent_n)
        rng.shuffle(unsent)
        devices = [w.devices[i % 2] for i in range(n)]
        rng.shuffle(devices)
        start, span = time.monotonic(), until - time.monotonic()
        for i in range(n):
            at = start + span * (i + 0.35) / n + rng.uniform(-0.5, 0.5)
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            await self.kill_leader(devices[i], unsent[i])

    async def find_leader(self, device: Device, timeout: float = 10.0) -> Member:
        found: list[Member] = []

        async def one() -> bool:
            found.clear()
            for m in device.live:
                with contextlib.suppress(RuntimeError, ConnectionError, TimeoutError, OSError):
                    if (await m.call("status"))["leader"]:
                        found.append(m)
            return len(found) == 1

        await wait_until(one, f"one leader on device {device.name}", timeout=timeout, interval=0.05)
        return found[0]

    async def kill_leader(self, device: Device, unsent: bool) -> None:
        w = self.world
        leader = await self.find_leader(device)
        note = f"{leader.name}"
        if unsent:
            async with w.net:  # no fault ends this black-hole early
                w.note(f"blackhole (for the kill of {leader.name})")
                self.proxy.set_mode("blackhole")
                muts = [
                    await w.send(leader, w.rng.leaders),
                    await w.rename_hot(leader),
                    await w.send(leader, w.rng.leaders),
                    await w.rename_hot(leader),
                ]
                queued = await leader.call("outbox")
                w.note(f"leader {leader.name} kill -9")
                await leader.kill()
                # The outage outlasts the leader a little: a survivor takes over (~0.1 s)
                # while the server is still out of reach.
                outage = w.rng.leaders.uniform(*w.plan.outage_after_kill_s)
                await asyncio.sleep(outage)
                self.proxy.set_mode("pass")
                w.note("blackhole over")
            ok = sum(m.status == "accepted" for m in muts)
            waiting = sum(e["state"] == "queued" for e in queued)
            note += (
                f" with {ok} just-accepted mutations ({waiting} queued in the outbox),"
                f" network back {outage:.1f} s later"
            )
        else:
            w.note(f"leader {leader.name} kill -9")
            await leader.kill()
        w.fig.leader_kills.append(note)
        w.respawn(device)

    async def final_outage(self) -> None:
        """The last fault: a black-hole with work piling up behind it (sends and renames in
        every process, the last word on each hot conversation an accepted rename); ``heal``
        ends it."""
        w = self.world
        await w.net.acquire()  # released by heal()
        w.note("blackhole (final outage)")
        self.proxy.set_mode("blackhole")
        w.fig.faults["blackhole (final outage)"] += 1
        end = time.monotonic() + w.plan.final_outage_s
        for member in w.live:
            await w.send(member, w.rng.final)
            await w.rename_hot(member)
        for device in w.devices:
            for _ in range(5):
                member = w.pick(w.rng.final, device)
                if member is not None and (await w.rename_hot(member)).status == "accepted":
                    break
                await asyncio.sleep(0.2)
        await asyncio.sleep(max(0.0, end - time.monotonic()))

    async def heal(self) -> float:
        """The network is back: every fault off, dead (black-holed) paths reset, and each
        process told, as the OS would tell it. Returns when it healed (monotonic)."""
        w = self.world
        try:
            self.proxy.set_mode("pass")
            healed = time.monotonic()
            self.proxy.cut()
            w.note("healed (pass, every connection cut)")
        finally:
            w.net.release()
        for m in w.live:
            with contextlib.suppress(RuntimeError, ConnectionError, TimeoutError, OSError):
                await m.call("network_changed")
        return healed
