"""What ``cross_instance.py`` reports of one run: its figures (``Result``), the detail printed
as it goes (``report``) and the summary row of the table and of ``--json`` (``summary``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from _streams import Server, pct, rss_kib

P99_TARGET_MS = 100.0
LABEL = "cross-instance"  # the runs the target is for


@dataclass
class Result:
    label: str
    subscribers: int
    writes: int
    all_ms: list[float]
    last_ms: list[float]
    post_ms: list[float]
    answered_ms: list[float]  # from the POST's answer (committed, poke queued) to each receipt
    lost: int
    cpu: dict[str, float]
    wall: float
    redis: dict[str, int]
    pg: dict[str, int]


def report(r: Result, servers: dict[str, Server]) -> None:
    delivered = r.writes * r.subscribers - r.lost
    target = f" (target ≤ {P99_TARGET_MS:g})" if r.label == LABEL and r.subscribers >= 1000 else ""
    print(f"\n== {r.label}: {r.subscribers} subscriber stream(s), {r.writes} writes")
    print(
        f"  every delivery (ms): p50 {pct(r.all_ms, 50):.1f}  p99 {pct(r.all_ms, 99):.1f}"
        f"{target}  max {max(r.all_ms, default=float('nan')):.1f}"
    )
    print(
        f"  last subscriber (ms): p50 {pct(r.last_ms, 50):.1f}  p99 {pct(r.last_ms, 99):.1f}  "
        f"max {max(r.last_ms, default=float('nan')):.1f}; the POST alone p50 "
        f"{pct(r.post_ms, 50):.1f} p99 {pct(r.post_ms, 99):.1f}"
    )
    print(
        f"  from the POST's answer (the write committed, its pokes queued) to each receipt (ms):"
        f" p50 {pct(r.answered_ms, 50):.1f}  p99 {pct(r.answered_ms, 99):.1f}"
    )
    cpu = ", ".join(
        f"{n} {c / r.wall * 100:.0f} % of a core ({c / max(1, delivered) * 1e6:.0f} µs/delivery)"
        f" RSS {rss_kib(servers[n].pid) / 1024:.0f} MiB"
        for n, c in r.cpu.items()
    )
    print(f"  lost {r.lost}; over {r.wall:.1f} s: {cpu}")
    total = sum(r.redis.values())
    top = ", ".join(f"{k} {v}" for k, v in sorted(r.redis.items(), key=lambda kv: -kv[1])[:6])
    print(
        f"  Redis: {total} commands = {total / r.writes:.1f} per write, "
        f"{total / max(1, delivered):.3f} per delivered change ({top})"
    )
    x = r.pg
    print(
        f"  PostgreSQL: {x.get('xacts', 0)} transactions = {x.get('xacts', 0) / r.writes:.1f} per "
        f"write, {x.get('xacts', 0) / max(1, delivered):.3f} per delivered change; rows "
        f"inserted {x.get('inserted', 0)}, updated {x.get('updated', 0)}, deleted "
        f"{x.get('deleted', 0)}, fetched {x.get('fetched', 0)} "
        f"({(x.get('inserted', 0) + x.get('updated', 0)) / r.writes:.0f} written per write)"
    )
    if "queries" in x or "tx_control" in x:
        q = x.get("queries", 0)
        print(
            f"  PostgreSQL statements: {q} queries = {q / r.writes:.1f} per write, "
            f"{q / max(1, delivered):.3f} per delivered change; plus {x.get('tx_control', 0)} "
            "BEGIN/SET TRANSACTION/COMMIT"
        )


def summary(r: Result) -> dict[str, Any]:
    """One run's figures: the summary table's row, and what ``--json`` writes."""
    delivered = max(1, r.writes * r.subscribers - r.lost)
    has_queries = "queries" in r.pg or "tx_control" in r.pg
    return {
        "run": r.label,
        "subscribers": r.subscribers,
        "writes": r.writes,
        "lost": r.lost,
        "p50_ms": pct(r.all_ms, 50),
        "p99_ms": pct(r.all_ms, 99),
        "max_ms": max(r.all_ms, default=float("nan")),
        "target_p99_ms": P99_TARGET_MS if r.label == LABEL and r.subscribers >= 1000 else None,
        "last_p99_ms": pct(r.last_ms, 99),
        "answered_p99_ms": pct(r.answered_ms, 99),
        "post_p99_ms": pct(r.post_ms, 99),
        "redis_per_change": sum(r.redis.values()) / delivered,
        "pg_queries_per_change": r.pg.get("queries", 0) / delivered if has_queries else None,
        "pg_transactions_per_change": r.pg.get("xacts", 0) / delivered,
        "cpu_us_per_delivery": sum(r.cpu.values()) / delivered * 1e6,
    }
