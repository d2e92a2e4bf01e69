"""The soak's world: its plan, the real processes (the server behind a fault proxy, and the
client processes of two devices), the mutations made so far, and the workload that makes them.
Everything the other parts of the soak (``soak_chaos``, ``soak_judge``) act on or look at."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.faultproxy import FaultProxy
from tests.support.live_server import add_users
from tests.support.procs import ClientProc, ServerProc
from tests.support.waiting import wait_until

from .soak_drain import ProcessLog
from .soak_figures import Figures

USER = "alice"


@dataclass
class SoakPlan:
    soak_s: float = 38.0  # the chaos phase (faults, kills, workload)
    faults: int = 39  # cuts, black-holes and answer drops on the proxy (+ the final outage)
    server_kills: int = 3
    leader_kills: int = 5
    leader_kills_unsent: int = 3  # of which: right after the leader accepted unsendable work
    convergence_limit_s: float = 5.0
    convergence_wait_s: float = 12.0  # how long to keep measuring past the limit
    creates: int = 10  # at most, besides the four the run starts with
    outage_after_kill_s: tuple[float, float] = (0.3, 0.8)
    final_outage_s: float = 1.0  # mutations pile up behind a black-hole, then the network heals


class Rngs:
    """Seeded random streams, one per actor, all from one seed: the timing of the processes
    cannot reorder one actor's draws."""

    def __init__(self, seed: int) -> None:
        self.workload, self.faults, self.server, self.leaders, self.final = (
            random.Random(f"{seed}:{name}")
            for name in ("workload", "faults", "server", "leaders", "final")
        )


@dataclass(eq=False)
class Member:
    """One client process of a device."""

    name: str
    device: Device
    proc: ClientProc
    alive: bool = True
    killed_at: float | None = None  # time.monotonic() of its SIGKILL

    async def call(self, op: str, timeout: float = 20.0, **args: Any) -> Any:
        return await self.proc.call(op, timeout=timeout, **args)

    async def kill(self) -> None:
        self.alive, self.killed_at = False, time.monotonic()
        await self.proc.kill()

    def log(self) -> ProcessLog:
        return ProcessLog(self.name, list(self.proc.events), self.killed_at)


@dataclass(eq=False)
class Device:
    name: str
    data: Path
    runtime: Path
    size: int
    members: list[Member] = field(default_factory=list)  # every process it had, dead ones too
    started: int = 0

    @property
    def live(self) -> list[Member]:
        return [
            m for m in self.members if m.alive and m.proc.proc and m.proc.proc.returncode is None
        ]


@dataclass
class Mutation:
    kind: str  # create | send | rename
    device: str
    member: str
    cid: str
    value: str  # the title or the body
    status: str = "pending"  # accepted | refused | unknown (no answer: the process died)
    error: str = ""


class World:
    def __init__(self, tmp: Path, seed: int, plan: SoakPlan) -> None:
        self.tmp, self.seed, self.plan = tmp, seed, plan
        self.rng = Rngs(seed)
        self.fig = Figures(seed, convergence_limit_s=plan.convergence_limit_s)
        self.server = ServerProc(tmp / "server")
        self.proxy: FaultProxy | None = None
        self.devices = [
            Device("A", tmp / "A-data", tmp / "A-run", 3),
            Device("B", tmp / "B-data", tmp / "B-run", 2),
        ]
        self.mutations: list[Mutation] = []
        self.net = asyncio.Lock()  # one owner of the proxy's mode at a time
        self.hot_locks = {d.name: asyncio.Lock() for d in self.devices}
        self.hot: dict[str, str] = {}  # device -> the conversation only that device renames
        self.shared: list[str] = []  # renamed by both devices: conflicts are legitimate
        self.convs: list[str] = []  # every conversation whose create was accepted
        self.starting: set[asyncio.Task[Member]] = set()
        self.timeline: list[tuple[float, str]] = []  # (time.monotonic(), what the chaos did)
        self._n = 0

    def note(self, what: str) -> None:
        self.timeline.append((time.monotonic(), what))

    def next_id(self) -> int:
        self._n += 1
        return self._n

    @property
    def live(self) -> list[Member]:
        return [m for d in self.devices for m in d.live]

    @property
    def members(self) -> list[Member]:
        """Every client process the run started, the killed ones too."""
        return [m for d in self.devices for m in d.members]

    # --- set-up and tear-down ----------------------------------------------------------------

    async def start(self) -> None:
        (self.tmp / "server").mkdir()
        add_users(self.tmp / "server", (USER,))
        await self.server.start()
        self.proxy = FaultProxy(("127.0.0.1", self.server.port)).start()
        await asyncio.gather(*(self.spawn(d) for d in self.devices for _ in range(d.size)))

    async def spawn(self, device: Device) -> Member:
        assert self.proxy is not None
        device.started += 1
        name = f"{device.name}{device.started}"
        proc = ClientProc(self.proxy.url, device.data, device.runtime, USER)
        member = Member(name, device, proc)
        try:
            await proc.start()
            await member.call("watch_conflicts", policy="reload")
        except BaseException:
            await proc.kill()
            raise
        device.members.append(member)
        return member

    def respawn(self, device: Device) -> None:
        """Start a process in the background (the device keeps its process count)."""
        task = asyncio.create_task(self.spawn(device))
        self.starting.add(task)
        task.add_done_callback(self.starting.discard)

    async def close(self) -> None:
        for task in list(self.starting):
            task.cancel()
        await asyncio.gather(*self.starting, return_exceptions=True)
        members = self.members
        await asyncio.gather(*(m.proc.quit() for m in members), return_exceptions=True)
        await asyncio.gather(*(m.proc.kill() for m in members), return_exceptions=True)
        await self.server.stop()
        if self.proxy is not None:
            self.proxy.stop()

    # --- mutations ---------------------------------------------------------------------------

    async def mutate(self, member: Member, kind: str, cid: str, value: str) -> Mutation:
        mut = Mutation(kind, member.device.name, member.name, cid, value)
        self.mutations.append(mut)
        try:
            if kind == "create":
                mut.cid = await member.call("create", title=value)
            elif kind == "send":
                await member.call("send", cid=cid, body=value)
            else:
                await member.call("rename", cid=cid, title=value)
            mut.status = "accepted"
        except RuntimeError as exc:  # an error answer: the client refused it
            mut.status, mut.error = "refused", str(exc)
        except (ConnectionError, TimeoutError, OSError) as exc:
            mut.status, mut.error = "unknown", f"{type(exc).__name__}: {exc}"
        if mut.status == "accepted" and kind == "create":
            self.convs.append(mut.cid)
        return mut

    async def send(self, member: Member, rng: random.Random) -> Mutation:
        body = f"m{self.next_id()}-{member.name}"
        return await self.mutate(member, "send", rng.choice(self.convs), body)

    async def rename_hot(self, member: Member) -> Mutation:
        """Renames of a device's hot conversation are serialised, so the order of the answers
        is the order of the outbox: the last accepted one must win."""
        device = member.device.name
        async with self.hot_locks[device]:
            title = f"{device}-hot-{self.next_id()}"
            return await self.mutate(member, "rename", self.hot[device], title)

    def pick(self, rng: random.Random, device: Device | None = None) -> Member | None:
        pool = device.live if device else self.live
        return rng.choice(pool) if pool else None

    # --- the workload ------------------------------------------------------------------------

    async def bootstrap(self) -> None:
        """The four conversations the run starts with, seen by every process."""
        a, b = self.devices
        (ma, mb) = (a.live[0], b.live[0])
        self.hot["A"] = (await self.mutate(ma, "create", "", "A-hot-0")).cid
        self.hot["B"] = (await self.mutate(mb, "create", "", "B-hot-0")).cid
        self.shared = [
            (await self.mutate(ma, "create", "", "shared-1")).cid,
            (await self.mutate(mb, "create", "", "shared-2")).cid,
        ]
        if any(m.status != "accepted" for m in self.mutations):
            raise AssertionError(f"bootstrap mutations refused: {self.mutations}")

        async def everyone_sees_them() -> bool:
            for m in a.live + b.live:
                state = await m.call("state")
                if not all(cid in state and not state[cid]["pending"] for cid in self.convs):
                    return False
            return True

        await wait_until(
            everyone_sees_them,
            "every process to show the first conversations",
            timeout=20,
            interval=0.05,
        )

    async def one_op(self, member: Member) -> None:
        rng = self.rng.workload
        r = rng.random()
        if r < 0.50:
            await self.send(member, rng)
        elif r < 0.75:
            await self.rename_hot(member)
        elif r < 0.90:
            cid = rng.choice(self.shared)
            await self.mutate(member, "rename", cid, f"{member.name}-shared-{self.next_id()}")
        elif sum(1 for m in self.mutations if m.kind == "create") < self.plan.creates + 4:
            await self.mutate(member, "create", "", f"c{self.next_id()}-{member.name}")
        else:
            await self.send(member, rng)

    async def workload(self, until: float) -> None:
        for _ in range(100_000):
            if time.monotonic() >= until:
                break
            member = self.pick(self.rng.workload)
            if member is not None:
                await self.one_op(member)
            await asyncio.sleep(self.rng.workload.uniform(0.02, 0.12))
