"""The soak's judging: wait for convergence after the heal, then hold the end state (the server's
snapshot, every live process's view and its device's outbox) against every accepted mutation,
and fill in the figures: lost, undelivered, unseen, duplicated, diverged, wrong titles,
conflicts, problems, and the outbox drains measured from the processes' event lines."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from typing import Any

import httpx

from tests.support.procs import PASSWORD

from .soak_drain import drain_figure
from .soak_world import USER, World

_CALL_ERRORS = (RuntimeError, ConnectionError, TimeoutError, OSError)


def route(request_line: str) -> str:
    """``"PATCH /api/v1/conversations/<uuid>"`` -> ``"PATCH conversations/{id}"``."""
    method, _, path = request_line.partition(" ")
    parts = path.strip("/").split("/")  # api/v1/conversations/<id>/messages
    return " ".join([method, "/".join(p if len(p) < 30 else "{id}" for p in parts[2:])])


def differences(server: dict[str, Any], views: dict[str, dict[str, Any]]) -> list[str]:
    diffs = []
    for name, view in sorted(views.items()):
        for cid in sorted(set(server) | set(view)):
            s, v = server.get(cid), view.get(cid)
            if s is None or v is None:
                diffs.append(f"{name}: {cid[:8]} {'missing' if v is None else 'not on the server'}")
            elif v["title"] != s["title"]:
                diffs.append(f"{name}: {cid[:8]} title {v['title']!r}, server {s['title']!r}")
            elif v["messages"] != s["messages"]:
                diffs.append(
                    f"{name}: {cid[:8]} messages differ ({len(v['messages'])} here, "
                    f"{len(s['messages'])} on the server)"
                )
            elif v["pending"]:
                diffs.append(f"{name}: {cid[:8]} still pending")
    return diffs


class Judge:
    def __init__(self, world: World) -> None:
        self.world = world
        self.fig = world.fig

    async def server_view(
        self, client: httpx.AsyncClient, headers: dict[str, str]
    ) -> dict[str, Any]:
        snap = (await client.get("/snapshot", params={"messages": 200}, headers=headers)).json()
        return {
            c["id"]: {
                "title": c["title"],
                "messages": [m["body"] for m in snap["messages"].get(c["id"], [])],
            }
            for c in snap["conversations"]
        }

    async def views(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for m in self.world.live:
            with contextlib.suppress(*_CALL_ERRORS):
                out[m.name] = await m.call("state")
        return out

    async def outboxes(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for d in self.world.devices:
            for m in d.live:
                with contextlib.suppress(*_CALL_ERRORS):
                    out[d.name] = await m.call("outbox")
                    break
        return out

    async def converge(
        self, healed: float
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """Poll until every view equals the server and the outboxes are empty (or time is up);
        returns the last server view, process views and outboxes."""
        w = self.world
        limit = w.plan.convergence_limit_s + w.plan.convergence_wait_s
        async with httpx.AsyncClient(base_url=w.server.url + "/api/v1", timeout=10) as client:
            r = await client.post("/auth/token", json={"username": USER, "password": PASSWORD})
            headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
            server: dict[str, Any] = {}
            views: dict[str, Any] = {}
            boxes: dict[str, Any] = {}
            for _ in range(int(limit / 0.05) + 2):
                server = await self.server_view(client, headers)
                views = await self.views()
                boxes = await self.outboxes()
                if (
                    not differences(server, views)
                    and all(not b for b in boxes.values())
                    and len(views) == sum(d.size for d in w.devices)
                ):
                    self.fig.converged_s = time.monotonic() - healed
                    break
                if time.monotonic() - healed > limit:
                    break
                await asyncio.sleep(0.05)
            self.fig.waited_s = time.monotonic() - healed
            return server, views, boxes

    async def diagnose(self, boxes: dict[str, list[dict[str, Any]]]) -> None:
        """What each live process says about itself, and what is stuck in each outbox."""
        for m in self.world.live:
            with contextlib.suppress(*_CALL_ERRORS):
                self.fig.statuses[m.name] = await m.call("status")
        for d, box in boxes.items():
            states = collections.Counter(f"{e['op']} {e['state']}" for e in box)
            if box:
                self.fig.stuck[d] = f"{dict(states)}; first {box[0]}"

    async def dup_applies(self) -> None:
        """A change applied twice to a device's cache (its apply log) counts as duplicated."""
        for d in self.world.devices:
            for m in d.live:
                with contextlib.suppress(*_CALL_ERRORS):
                    applied = (await m.call("stats"))["applied"]
                    twice = [s for s, n in collections.Counter(applied).items() if n > 1]
                    if twice:
                        self.fig.duplicated.append(
                            f"device {d.name}: changes applied twice {twice[:10]}"
                        )
                    break

    def drains(self, end: float) -> None:
        logs = {d.name: [m.log() for m in d.members] for d in self.world.devices}
        self.fig.drain = drain_figure(logs, end)

    def judge(self, server: dict[str, Any], views: dict[str, Any], boxes: dict[str, Any]) -> None:
        w, fig = self.world, self.fig
        for m in w.mutations:
            fig.mutations[f"{m.status} {m.kind}"] += 1
            if m.status != "accepted":
                fig.refusals[f"{m.status} {m.kind}: {m.error.split(':')[0]}"] += 1
        self.conflicts()
        if w.proxy is not None:
            fig.answers_dropped = collections.Counter()
            for line, n in w.proxy.stats.dropped.items():
                fig.answers_dropped[route(line)] += n
        fig.outboxes = {d: len(b) for d, b in boxes.items()}
        for d, b in boxes.items():
            if b:
                fig.problems.append(f"device {d}: {len(b)} outbox entries left")
        self.deliveries(server, views, boxes)
        fig.diverged = differences(server, views)
        self.titles({"server": server, **views})
        self.health()

    def conflicts(self) -> None:
        fig = self.fig
        hot_cids = set(self.world.hot.values())
        for m in self.world.members:
            for e in m.proc.events:
                if e["event"] in ("conflict", "conflict_error"):
                    fig.conflicts.append({"process": m.name, **e, "hot": e.get("cid") in hot_cids})
        fig.conflicts = [dict(t) for t in {tuple(c.items()) for c in fig.conflicts}]
        fig.conflicts.sort(key=lambda c: (c["process"], c.get("entry") or 0))
        hot = [c for c in fig.conflicts if c.get("hot")]
        if hot:
            fig.problems.append(
                f"{len(hot)} conflicts on a conversation only one device renames: a device's "
                "own renames conflicted with each other"
            )

    def deliveries(
        self, server: dict[str, Any], views: dict[str, Any], boxes: dict[str, Any]
    ) -> None:
        """Each accepted send and create, in each place: there once, or why not."""
        fig, mutations = self.fig, self.world.mutations
        accepted = {m.value: m for m in mutations if m.kind == "send" and m.status == "accepted"}
        queued = {e.get("body") for b in boxes.values() for e in b if e["op"] == "send"}
        on_server = {b for c in server.values() for b in c["messages"]}
        queued_creates = {e["target"] for b in boxes.values() for e in b if e["op"] == "create"}
        for place, state in {"server": server, **views}.items():
            bodies = collections.Counter(b for c in state.values() for b in c["messages"])
            for body, mut in accepted.items():
                if bodies[body]:
                    continue
                if body in queued:  # still in its device's outbox
                    fig.undelivered.append(f"{place}: message {body!r} (by {mut.member})")
                elif body in on_server:  # delivered, but this process does not show it
                    fig.unseen.append(f"{place}: message {body!r} (by {mut.member})")
                else:
                    fig.lost.append(f"{place}: message {body!r} (accepted by {mut.member})")
            for body, n in bodies.items():
                if n > 1:
                    fig.duplicated.append(f"{place}: message {body!r} {n} times")
            for m in mutations:
                if m.kind != "create" or m.status != "accepted" or m.cid in state:
                    continue
                what = f"{place}: conversation {m.value!r} (by {m.member})"
                if m.cid in queued_creates:
                    fig.undelivered.append(what)
                elif m.cid in server:
                    fig.unseen.append(what)
                else:
                    fig.lost.append(what)

    def titles(self, places: dict[str, Any]) -> None:
        """A device's hot conversation carries its last accepted rename, everywhere."""
        for device, cid in self.world.hot.items():
            renames = [
                m
                for m in self.world.mutations
                if m.kind == "rename" and m.cid == cid and m.status == "accepted"
            ]
            want = renames[-1].value if renames else f"{device}-hot-0"
            for place, state in places.items():
                have = state.get(cid, {}).get("title")
                if have != want:
                    self.fig.wrong_titles.append(
                        f"{place}: hot conversation of {device} is {have!r}, its last accepted "
                        f"rename was {want!r} ({len(renames)} accepted renames)"
                    )

    def health(self) -> None:
        """Convergence in time, every process live with one leader per device, and the chaos
        that was planned actually done."""
        fig, plan = self.fig, self.world.plan
        if fig.converged_s is None or fig.converged_s > fig.convergence_limit_s:
            fig.problems.append(
                f"not converged within {fig.convergence_limit_s:.0f} s of the network healing"
            )
        for name, status in sorted(fig.statuses.items()):
            if status.get("state") != "live":
                fig.problems.append(f"process {name} ends {status.get('state')!r}: {status}")
        leaders = collections.Counter(n[0] for n, st in fig.statuses.items() if st.get("leader"))
        for d in self.world.devices:
            if leaders[d.name] != 1:
                fig.problems.append(f"device {d.name} ends with {leaders[d.name]} leaders")
        if fig.fault_count < 30:
            fig.problems.append(f"only {fig.fault_count} network faults")
        if fig.server_kills != plan.server_kills:
            fig.problems.append(f"{fig.server_kills} server kills")
        if len(fig.leader_kills) != plan.leader_kills:
            fig.problems.append(f"{len(fig.leader_kills)} leader kills")
