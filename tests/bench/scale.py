"""Benchmark: Step 10's figures in one run, side by side — idle streams on one instance, the
1,000-member broadcast at 3,000 streams, and cross-instance publish → receive over two
instances on PostgreSQL + Redis, with Redis commands and PostgreSQL queries per delivered
change.

Runs ``idle_streams.py``, ``broadcast.py`` and ``cross_instance.py`` one after another (each
prints its own detail as it goes), then one table: every figure beside its baseline and its
target. Baselines from this run: the server with no stream; the cross-instance level's control
(the same 1,000 subscribers streaming from the writer's instance); and the broadcast on one
instance (SQLite) against the same broadcast split over two on PostgreSQL + Redis. Beside them,
for reference, the figures issue 13 measured before the batching, and this repository's own
before-batching runs of these scripts (stop 17).

    eval "$(.ci/services.sh start)"   # PostgreSQL + Redis, for the cross-instance part
    nice -n 5 python tests/bench/scale.py [--quick]

Without ``CONCORD_TEST_POSTGRES_URL`` / ``CONCORD_TEST_REDIS_URL`` the cross-instance part is
left out, and says so. ``--quick`` is a smoke of the runner (smaller counts; figures not
comparable with the targets). About 6 minutes in full on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

# name -> (script, full arguments, --quick arguments)
PARTS: dict[str, tuple[str, list[str], list[str]]] = {
    "idle": ("idle_streams.py", [], ["--streams", "500,1000", "--window", "6", "--settle", "2"]),
    "broadcast": ("broadcast.py", [], ["--members", "200", "--broadcasts", "20"]),
    "cross": (
        "cross_instance.py",
        [],
        ["--levels", "1,100", "--writes", "20", "--writes-1000", "20", "--broadcast-devices", "0"],
    ),
}

# Figures measured before the batching: issue 13's own (uvicorn + uvloop, one instance), and
# this repository's runs of the same scripts before it (stop 17). For reference only: the
# baselines proper are the same-run controls.
BEFORE = {
    "idle_cpu_1000": "0.8 to 0.9 (issue); 0.75",
    "idle_cpu_5000": "1.9 to 2.7 at 3k, 7.1 at 6k (issue); 5.84",
    "idle_cpu_10000": "13.5",
    "idle_kib_1000": "48.6 (issue); 50.6",
    "idle_kib_5000": "42.7 at 3k (issue); 43.6",
    "idle_kib_10000": "42.3",
    "broadcast_p99": "max 644 to 1,145 (issue); p99 500",
    "cross_p99_1": "4.5 to 8.3 incl. the commit",
    "cross_p99_100": "72 to 75 incl. the commit",
    "cross_p99_1000": "447 to 494 incl. the commit",
}


def run_part(name: str, quick: bool, out: Path) -> dict[str, Any] | None:
    script, full, small = PARTS[name]
    cmd = [sys.executable, str(HERE / script), *(small if quick else full), "--json", str(out)]
    print(f"\n######## {script} {' '.join(cmd[2:])}", flush=True)
    t0 = time.monotonic()
    code = subprocess.run(cmd, cwd=HERE.parents[1], check=False).returncode
    print(f"######## {script}: exit {code} after {time.monotonic() - t0:.0f} s", flush=True)
    if not out.exists():
        return None
    result: dict[str, Any] = json.loads(out.read_text())  # written before any cleanup failed
    result["exit"] = code
    return result


def num(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def rows_idle(idle: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    no_cpu = f"no stream: {num(idle['no_stream_cpu_pct'], 2)}"
    no_rss = f"base RSS {num(idle['no_stream_rss_kib'] / 1024, 0)} MiB"
    rows = []
    for step in idle["steps"]:
        n = step["streams"]
        rows.append(
            (
                f"idle CPU, {n:,} streams (% of a core; µs per heartbeat)",
                f"{num(step['cpu_pct'], 2)} ({num(step['us_per_heartbeat'], 0)} µs)",
                no_cpu,
                BEFORE.get(f"idle_cpu_{n}", "-"),
                verdict(step["cpu_pct"], step["cpu_target_pct"]),
            )
        )
        rows.append(
            (
                f"RSS per idle stream, {n:,} streams (KiB)",
                num(step["kib_per_stream"]),
                no_rss,
                BEFORE.get(f"idle_kib_{n}", "-"),
                verdict(step["kib_per_stream"], step["kib_target"]),
            )
        )
    return rows


def rows_broadcast(
    b: dict[str, Any], split: dict[str, Any] | None
) -> list[tuple[str, str, str, str, str]]:
    same_run = f"2 instances, PostgreSQL: {num(split['last_p99_ms'], 0)}" if split else "-"
    return [
        (
            f"broadcast to {b['members']:,} members, {b['streams']:,} streams, "
            f"{b['broadcasts']} sends: last subscriber p99 (ms)",
            num(b["last_p99_ms"], 0),
            same_run,
            BEFORE["broadcast_p99"],
            verdict(b["last_p99_ms"], b["target_p99_ms"]) + f"; lost {b['lost']}",
        ),
        (
            "broadcast: server CPU per delivered event (µs)",
            num(b["cpu_us_per_event"], 0),
            "-",
            "-",
            "-",
        ),
    ]


def rows_cross(cross: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    runs = cross["runs"]
    control = next((r for r in runs if r["run"].startswith("control")), None)
    split = next((r for r in runs if r["run"].startswith("broadcast")), None)
    rows = []
    for r in runs:
        if r is control or r is split:
            continue
        n = r["subscribers"]
        base = "-"
        if control and control["subscribers"] == n:
            base = f"writer's instance: {both(control)}"
        rows.append(
            (
                f"cross-instance p99, {n:,} subscriber(s) (ms: from publish / incl. commit)",
                both(r),
                base,
                BEFORE.get(f"cross_p99_{n}", "-"),
                verdict(r["answered_p99_ms"], r["target_p99_ms"]) + f"; lost {r['lost']}",
            )
        )
    biggest = max((r for r in runs if r is not control and r is not split), key=subs)
    for label, key, digits in (
        ("Redis commands per delivered change", "redis_per_change", 3),
        ("PostgreSQL queries per delivered change", "pg_queries_per_change", 3),
        ("PostgreSQL transactions per delivered change", "pg_transactions_per_change", 3),
    ):
        rows.append(
            (
                f"{label}, {biggest['subscribers']:,} subscribers",
                num(biggest[key], digits),
                f"{subs(runs[0]):,} subscriber(s): {num(runs[0][key], digits)}"
                if runs[0] is not biggest
                else "-",
                "-",
                "-",
            )
        )
    return rows


def both(r: dict[str, Any]) -> str:
    """p99 from the publish (the POST answered: committed, pokes sent) / from before the POST."""
    return f"{num(r['answered_p99_ms'])} / {num(r['p99_ms'])}"


def subs(r: dict[str, Any]) -> int:
    return int(r["subscribers"])


def verdict(value: float | None, target: float | None) -> str:
    """Met or not against an upper bound."""
    if target is None:
        return "-"
    if value is None:
        return "not measured"
    return f"≤ {target:g}: {'met' if value <= target else 'NOT met'}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a smoke of the runner, small counts")
    ap.add_argument("--only", default="idle,broadcast,cross", help="a subset of the parts")
    args = ap.parse_args()
    wanted = [p for p in args.only.split(",") if p]
    if "cross" in wanted and not (
        os.environ.get("CONCORD_TEST_POSTGRES_URL") and os.environ.get("CONCORD_TEST_REDIS_URL")
    ):
        print('cross-instance left out: no PostgreSQL/Redis (eval "$(.ci/services.sh start)")')
        wanted.remove("cross")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="concord-scale-") as tmp:
        results = {p: run_part(p, args.quick, Path(tmp) / f"{p}.json") for p in wanted}
    rows: list[tuple[str, str, str, str, str]] = []
    cross = results.get("cross")
    split = None
    if cross:
        split = next((r for r in cross["runs"] if r["run"].startswith("broadcast")), None)
    if results.get("idle"):
        rows += rows_idle(results["idle"])
    if results.get("broadcast"):
        rows += rows_broadcast(results["broadcast"], split)
    if cross:
        rows += rows_cross(cross)
    failed = [p for p in wanted if results.get(p) is None or results[p]["exit"] != 0]
    print(
        f"\n== Step 10 benchmarks, one run ({time.monotonic() - t0:.0f} s"
        f"{', --quick: not comparable with the targets' if args.quick else ''})"
    )
    head = ("figure", "this run", "baseline, same run", "before batching", "target")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(5)]
    for r in [head, tuple("-" * w for w in widths), *rows]:
        print(" | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    if failed:
        print(f"\nfailed: {', '.join(failed)} (their output is above)")
        sys.exit(1)


if __name__ == "__main__":
    main()
