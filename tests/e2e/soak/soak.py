"""The chaos soak's harness (``test_soak.py``): two devices of one user as real client processes
(3 + 2, each device one cache and one bus), the real server (``concord-server serve``) behind a
fault proxy, and a seeded plan of faults, server ``kill -9``s, leader ``kill -9``s and a
workload of creates, sends and renames. ``Soak.run()`` returns the :class:`Figures`.

Every loop here is bounded in count and in time, every address is loopback, and the plan (what
happens, to whom, in what order, roughly when) is drawn from one seed; the timing of the
processes is not, so the checks are about the end state only: each accepted mutation on the
server and in every process's view exactly once, equal titles, empty outboxes, and how long
that took after the network healed; and, from the processes' timestamped event lines, how long
each device's outbox took to empty once its leader reached the server again.

The parts: ``soak_world`` (the plan, the processes, the workload), ``soak_chaos`` (faults and
kills), ``soak_judge`` (convergence and the end state), ``soak_drain`` (the outbox-drain figure)
and ``soak_figures`` (what is printed).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from .soak_chaos import Chaos
from .soak_figures import Figures
from .soak_judge import Judge
from .soak_world import SoakPlan, World

__all__ = ["Figures", "Soak", "SoakPlan"]


class Soak:
    def __init__(self, tmp: Path, seed: int, plan: SoakPlan | None = None) -> None:
        self.seed, self.plan = seed, plan or SoakPlan()
        self.world = World(tmp, seed, self.plan)
        self.chaos = Chaos(self.world)
        self.judge = Judge(self.world)
        self.fig = self.world.fig

    async def close(self) -> None:
        await self.world.close()

    async def run(self) -> Figures:
        t0 = phase = time.monotonic()

        def lap(name: str) -> None:
            nonlocal phase
            now = time.monotonic()
            self.fig.phases[name] = now - phase
            phase = now

        w, chaos, judge = self.world, self.chaos, self.judge
        await w.start()
        lap("start")
        await w.bootstrap()
        lap("bootstrap")
        until = time.monotonic() + self.plan.soak_s
        await asyncio.gather(
            chaos.faults(until),
            chaos.server_kills(until),
            chaos.leader_kills(until),
            w.workload(until),
        )
        await asyncio.wait_for(asyncio.gather(*w.starting), 25)
        lap("chaos")
        await chaos.final_outage()
        lap("final outage")
        healed = await chaos.heal()
        server, views, boxes = await judge.converge(healed)
        lap("convergence")
        judge.drains(time.monotonic())
        await judge.dup_applies()
        await judge.diagnose(boxes)
        judge.judge(server, views, boxes)
        self.fig.phases["total"] = time.monotonic() - t0
        return self.fig
