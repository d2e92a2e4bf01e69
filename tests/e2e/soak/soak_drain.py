"""The soak's outbox-drain figure: per device, for every recovery (the device's leader goes from
not reaching the server to reaching it, by the stream or by a poll) while the device's outbox
held unsent entries, the time until that outbox is empty. A recovery that ends before the outbox
empties (the server lost again, the leader killed, the soak over) is *censored*: counted and
shown apart, never dropped and never mixed into the percentiles; its wait is a lower bound of
what the drain would have taken, so the summary also gives the p99 with those waits counted as
samples (a floor under the true p99), and each recovery says when its first entry settled (a
sender stuck on a dead connection settles none while the stream is live again).

The input is each client process's event lines (``tests/support/_client_proc.py``): ``ready`` and
``status`` (``state``, ``role``, ``t``, ``unsent``: the shared cache's unsettled entries at that
moment) and ``outbox`` (``count`` from the client's ``outbox_changed``, ``t``), every ``t`` on
the host's monotonic clock, as is the harness's own ``killed_at`` of a process it SIGKILLed.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

REACHED = frozenset({"live", "polling"})  # the stream or a poll got through
TARGET_P99_S = 1.0
DRAINED = "drained"


@dataclass(frozen=True)
class ProcessLog:
    """One client process as the drain figure sees it."""

    name: str
    events: Sequence[dict[str, Any]]
    killed_at: float | None = None  # SIGKILL sent (harness clock); later lines are ignored


@dataclass(frozen=True)
class Recovery:
    device: str
    leader: str
    at: float  # the leader's first "reached" status
    unsent: int  # unsettled outbox entries then
    after: str  # the leader's state before, "... (new leader)" after a failover
    waited_s: float  # until the outbox was empty, or until the sample was censored
    ended: str  # "drained", else why it was censored
    first_settled_s: float | None = None  # until the outbox count first went down

    @property
    def censored(self) -> bool:
        return self.ended != DRAINED

    def __str__(self) -> str:
        how = "empty" if not self.censored else f"censored ({self.ended})"
        first = (
            "nothing settled"
            if self.first_settled_s is None
            else f"first settled after {self.first_settled_s:.2f} s"
        )
        return (
            f"{self.device} {self.leader} at {self.at:.2f}: {self.unsent} unsent at the recovery "
            f"(after {self.after}), {how} after {self.waited_s:.2f} s, {first}"
        )


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..1): a value that occurred, never an interpolation."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass
class DrainFigure:
    recoveries: list[Recovery] = field(default_factory=list)
    target_p99_s: float = TARGET_P99_S

    @property
    def samples(self) -> list[float]:
        return [r.waited_s for r in self.recoveries if not r.censored]

    @property
    def censored(self) -> list[Recovery]:
        return [r for r in self.recoveries if r.censored]

    @property
    def p50(self) -> float | None:
        return percentile(self.samples, 0.50)

    @property
    def p99(self) -> float | None:
        return percentile(self.samples, 0.99)

    @property
    def p99_floor(self) -> float | None:
        """The p99 with each censored wait counted as a sample: the true p99 is at least this."""
        return percentile([r.waited_s for r in self.recoveries], 0.99)

    @property
    def stuck(self) -> list[Recovery]:
        """Recoveries that settled nothing for more than the target while the server was
        reached."""
        return [
            r
            for r in self.recoveries
            if (r.first_settled_s if r.first_settled_s is not None else r.waited_s)
            > self.target_p99_s
        ]

    @property
    def misses_target(self) -> bool:
        """p99 over the target, on enough samples (5) for a p99 to mean something."""
        p99 = self.p99
        return len(self.samples) >= 5 and p99 is not None and p99 > self.target_p99_s

    def summary(self) -> list[str]:
        """Two lines: the samples, then the censored recoveries."""

        def s(v: float | None) -> str:
            return "-" if v is None else f"{v:.2f} s"

        why = Counter(r.ended for r in self.censored)
        return [
            f"p50 {s(self.p50)}, p99 {s(self.p99)}, max {s(max(self.samples, default=None))} "
            f"over {len(self.samples)} samples (target p99 ≤ {self.target_p99_s:.0f} s)"
            + (" TARGET MISSED" if self.misses_target else ""),
            f"censored {len(self.censored)}"
            + (f" ({', '.join(f'{k} {v}' for k, v in sorted(why.items()))})" if why else "")
            + f"; p99 counting censored waits as lower bounds ≥ {s(self.p99_floor)}; "
            f"nothing settled for > {self.target_p99_s:.0f} s while reached: {len(self.stuck)}",
        ]

    def slowest(self, n: int = 5) -> list[Recovery]:
        drained = [r for r in self.recoveries if not r.censored]
        return sorted(drained, key=lambda r: r.waited_s, reverse=True)[:n]


class _Device:
    """The state machine of one device: who leads, whether it reaches the server, and the
    recovery being measured."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.leader: str | None = None
        self.state = "none"
        self.new_leader = False  # not reached since it took over
        self.open: tuple[float, int, str, str] | None = None  # at, unsent, leader, after
        self.last_count = 0  # the leader's outbox count, while a recovery is measured
        self.first_settled: float | None = None
        self.out: list[Recovery] = []

    @property
    def reached(self) -> bool:
        return self.leader is not None and self.state in REACHED

    def close(self, t: float, ended: str) -> None:
        if self.open is not None:
            at, unsent, leader, after = self.open
            first = self.first_settled
            if first is None and ended == DRAINED:
                first = t - at
            self.out.append(Recovery(self.name, leader, at, unsent, after, t - at, ended, first))
            self.open = None

    def leader_status(self, t: float, name: str, state: str, unsent: int) -> None:
        before = self.reached
        if name != self.leader:
            self.new_leader, self.state = True, "none"
        after = self.state + (" (new leader)" if self.new_leader else "")
        self.leader, self.state = name, state
        if self.reached:
            self.new_leader = False
        if self.reached and not before and unsent > 0:
            self.open = (t, unsent, name, after)
            self.last_count, self.first_settled = unsent, None
        elif before and not self.reached:
            self.close(t, f"server lost again ({state})")
        elif self.open is not None and unsent == 0:
            self.close(t, DRAINED)

    def leader_gone(self, t: float, why: str) -> None:
        self.close(t, why)
        self.leader, self.state = None, "none"

    def outbox(self, name: str, count: int, t: float) -> None:
        if name != self.leader or self.open is None:
            return
        if count < self.last_count and self.first_settled is None:
            self.first_settled = t - self.open[0]
        self.last_count = count
        if count == 0:
            self.close(t, DRAINED)


def device_recoveries(device: str, procs: Sequence[ProcessLog], end: float) -> list[Recovery]:
    """The recoveries of one device's processes up to ``end`` (harness monotonic time)."""
    timeline: list[tuple[float, int, str, dict[str, Any] | None]] = []
    for proc in procs:
        for ev in proc.events:
            t = ev.get("t")
            if t is None or ev["event"] not in ("ready", "status", "outbox") or t > end:
                continue
            if proc.killed_at is None or t < proc.killed_at:
                timeline.append((t, 1, proc.name, ev))
        if proc.killed_at is not None and proc.killed_at <= end:
            timeline.append((proc.killed_at, 0, proc.name, None))
    timeline.sort(key=lambda e: (e[0], e[1]))
    d = _Device(device)
    for t, _, name, ev in timeline:
        if ev is None:
            if name == d.leader:
                d.leader_gone(t, "leader killed")
        elif ev["event"] == "outbox":
            d.outbox(name, ev["count"], t)
        elif ev.get("role") == "leader":
            d.leader_status(t, name, ev["state"], ev.get("unsent", 0))
        elif name == d.leader:  # it stepped down
            d.leader_gone(t, "leader stepped down")
    d.close(end, "soak ended")
    return d.out


def drain_figure(devices: dict[str, Sequence[ProcessLog]], end: float) -> DrainFigure:
    fig = DrainFigure()
    for device, procs in sorted(devices.items()):
        fig.recoveries += device_recoveries(device, procs, end)
    fig.recoveries.sort(key=lambda r: r.at)
    return fig
