"""The soak's figures: what happened (mutations, faults, kills), what the end state showed (lost,
duplicated, diverged, ...), how long convergence and outbox drains took; ``render()`` is the
block the test prints."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any

from .soak_drain import DrainFigure


@dataclass
class Figures:
    seed: int
    mutations: collections.Counter[str] = field(default_factory=collections.Counter)
    faults: collections.Counter[str] = field(default_factory=collections.Counter)
    answers_dropped: collections.Counter[str] = field(default_factory=collections.Counter)
    server_kills: int = 0
    leader_kills: list[str] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)  # accepted, and neither there nor queued
    undelivered: list[str] = field(default_factory=list)  # accepted, still in an outbox
    unseen: list[str] = field(default_factory=list)  # on the server, not in a process's view
    duplicated: list[str] = field(default_factory=list)
    diverged: list[str] = field(default_factory=list)
    wrong_titles: list[str] = field(default_factory=list)
    outboxes: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    converged_s: float | None = None
    convergence_limit_s: float = 5.0
    waited_s: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    statuses: dict[str, Any] = field(default_factory=dict)  # of each live process, at the end
    stuck: dict[str, str] = field(default_factory=dict)  # a device's outbox, when not empty
    refusals: collections.Counter[str] = field(default_factory=collections.Counter)
    drain: DrainFigure = field(default_factory=DrainFigure)

    @property
    def fault_count(self) -> int:
        return sum(self.faults.values())

    @property
    def failed(self) -> bool:
        """Whether the end state breaks a promise (the figures above the line)."""
        return bool(
            self.lost
            or self.undelivered
            or self.unseen
            or self.duplicated
            or self.diverged
            or self.wrong_titles
            or self.problems
        )

    def render(self) -> str:
        m, f = self.mutations, self.faults

        def total(status: str) -> int:
            return sum(v for k, v in m.items() if k.startswith(status + " "))

        accepted = total("accepted")
        conv = (
            f"{self.converged_s:.2f} s"
            if self.converged_s is not None
            else f"NOT converged after {self.waited_s:.1f} s"
        )
        hot = [c for c in self.conflicts if c.get("hot")]
        drain = self.drain.summary()
        lines = [
            f"=== concord chaos soak: seed {self.seed} (CONCORD_SOAK_SEED={self.seed}) ===",
            f"mutations accepted  {accepted}: "
            + ", ".join(f"{k[9:]} {v}" for k, v in sorted(m.items()) if k.startswith("accepted "))
            + f"; refused {total('refused')}; unanswered (process killed) {total('unknown')}"
            + (f" ({dict(self.refusals)})" if self.refusals else ""),
            f"faults              {self.fault_count}: "
            + ", ".join(f"{k} {v}" for k, v in sorted(f.items()))
            + f"; answers actually dropped {sum(self.answers_dropped.values())}"
            + (f" ({dict(self.answers_dropped)})" if self.answers_dropped else ""),
            f"server kill -9      {self.server_kills} (each restarted on the same data and port)",
            f"leader kill -9      {len(self.leader_kills)}: " + "; ".join(self.leader_kills),
            f"conflicts           {len(self.conflicts)} (on a one-device hot conversation: "
            f"{len(hot)})",
            f"lost                {len(self.lost)} (accepted, then neither there nor in an outbox)",
            f"undelivered         {len(self.undelivered)} (accepted, still in an outbox)",
            f"unseen              {len(self.unseen)} (on the server, missing from a view)",
            f"duplicated          {len(self.duplicated)}",
            f"diverged            {len(self.diverged)}",
            f"wrong titles        {len(self.wrong_titles)}",
            f"outboxes at the end {self.outboxes}",
            f"convergence         {conv} after the network healed (limit "
            f"{self.convergence_limit_s:.0f} s)",
            "outbox drain        server reached again -> outbox empty: " + drain[0],
            "                    " + drain[1],
            "phases              " + ", ".join(f"{k} {v:.1f} s" for k, v in self.phases.items()),
        ]
        for title, items in (
            ("lost", self.lost),
            ("undelivered", self.undelivered),
            ("unseen", self.unseen),
            ("duplicated", self.duplicated),
            ("diverged", self.diverged),
            ("wrong titles", self.wrong_titles),
            ("conflicts", [str(c) for c in self.conflicts]),
            ("problems", self.problems),
            ("stuck outboxes", [f"{d}: {v}" for d, v in self.stuck.items()]),
            ("process status", [f"{n}: {v}" for n, v in sorted(self.statuses.items())]),
            ("slowest outbox drains", [str(r) for r in self.drain.slowest()]),
            ("censored outbox drains", [str(r) for r in self.drain.censored]),
        ):
            if items:
                lines.append(f"--- {title} ({len(items)}) ---")
                lines += [f"  {item}" for item in items[:25]]
                if len(items) > 25:
                    lines.append(f"  ... and {len(items) - 25} more")
        return "\n".join(lines)
