"""Benchmark: what idle SSE streams cost one server instance — its own CPU and RSS per stream.

N streams over N/2 users (two signed-in devices per user, each its own session, as a team
with a desktop and a laptop open), all idle: the server only heartbeats (``--heartbeat``, 15 s
by default) and rechecks sessions. The load client is this process (asyncio, raw sockets);
the server is one ``concord-server serve`` subprocess (uvicorn, fsync on, loopback). Streams
are opened in steps (1,000 → 5,000 → 10,000 by default); at each step, once every stream is
open and a settle time has passed, the server's own CPU is read from ``/proc/<pid>/stat``
(utime + stime, every thread) over ``--window`` seconds, and its RSS per stream is
(RSS now - RSS with no stream) / N.

    nice -n 5 python tests/bench/idle_streams.py [--streams 1000,5000,10000] [--window 20]
        [--json F]

Targets (issue 13): ≤ 3 % of a core and ≤ 45 KiB per stream at 5,000 streams.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from _streams import (
    Server,
    cpu_seconds,
    install_uvloop,
    make_data,
    open_streams,
    raise_nofile,
    write_json,
)
from _streams import rss_kib as rss

DEVICES_PER_USER = 2
CPU_TARGET = {5000: 3.0}  # % of one core
RSS_TARGET = {5000: 45.0}  # KiB per stream


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", default="1000,5000,10000")
    ap.add_argument("--window", type=float, default=20.0, help="CPU window, seconds")
    ap.add_argument("--heartbeat", type=float, default=15.0)
    ap.add_argument("--settle", type=float, default=5.0, help="seconds after the last open")
    ap.add_argument("--json", default="", help="also write the summary to this file")
    args = ap.parse_args()
    steps = sorted(int(x) for x in args.streams.split(","))
    nofile = raise_nofile()
    if steps[-1] + 100 > nofile:
        raise SystemExit(f"RLIMIT_NOFILE hard limit {nofile} is below {steps[-1]} streams")
    t0 = time.monotonic()
    dep = await make_data(-(-steps[-1] // DEVICES_PER_USER), DEVICES_PER_USER)
    # Device-major order: the first N tokens cover N/2 users with both their devices.
    order = sorted(range(len(dep.tokens)), key=lambda i: (dep.owner[i], i))
    tokens = [dep.tokens[i] for i in order]
    took = time.monotonic() - t0
    print(f"data: {len(dep.usernames)} users, {len(tokens)} sessions ({took:.0f} s)")
    server = Server(dep.data, args.heartbeat, streams=steps[-1])
    rows: list[tuple[int, float, float, float, int]] = []
    streams = []
    try:
        await server.wait_up()
        await asyncio.sleep(2.0)
        rss0 = rss(server.pid)
        cpu_a = cpu_seconds(server.pid)
        await asyncio.sleep(args.window / 2)
        idle0 = (cpu_seconds(server.pid) - cpu_a) / (args.window / 2) * 100
        print(f"server with no stream: RSS {rss0} KiB, CPU {idle0:.2f} % of a core")
        for n in steps:
            t = time.monotonic()
            streams += await open_streams(server.port, tokens[len(streams) : n])
            print(f"{n} streams open ({time.monotonic() - t:.1f} s)", flush=True)
            await asyncio.sleep(args.settle)
            for s in streams:
                s.heartbeats = 0
            cpu_a, wall_a = cpu_seconds(server.pid), time.monotonic()
            await asyncio.sleep(args.window)
            cpu_b, wall_b = cpu_seconds(server.pid), time.monotonic()
            hbs = sum(s.heartbeats for s in streams)
            alive = sum(1 for s in streams if s.transport and not s.transport.is_closing())
            pct_core = (cpu_b - cpu_a) / (wall_b - wall_a) * 100
            per_stream = (rss(server.pid) - rss0) / n
            us_per_hb = (cpu_b - cpu_a) / hbs * 1e6 if hbs else float("nan")
            rows.append((n, pct_core, per_stream, us_per_hb, hbs))
            print(
                f"  CPU {pct_core:.2f} % of a core, {per_stream:.1f} KiB/stream, "
                f"{hbs} heartbeats in {wall_b - wall_a:.0f} s ({us_per_hb:.0f} µs CPU each), "
                f"{alive} alive",
                flush=True,
            )
    finally:
        for s in streams:
            s.close()
        server.stop()
    print(
        f"\nidle streams, one instance, heartbeat {args.heartbeat:g} s, "
        f"{DEVICES_PER_USER} streams per user, CPU over {args.window:g} s"
    )
    print(
        f"{'streams':>8} | {'CPU % core':>10} {'target':>7} | {'KiB/stream':>10} {'target':>7} | "
        f"{'µs CPU per hb':>13}"
    )
    for n, c, m, us, _ in rows:
        ct = f"≤ {CPU_TARGET[n]:g}" if n in CPU_TARGET else "-"
        mt = f"≤ {RSS_TARGET[n]:g}" if n in RSS_TARGET else "-"
        print(f"{n:>8} | {c:>10.2f} {ct:>7} | {m:>10.1f} {mt:>7} | {us:>13.0f}")
    write_json(
        args.json,
        {
            "heartbeat_s": args.heartbeat,
            "no_stream_cpu_pct": idle0,
            "no_stream_rss_kib": rss0,
            "steps": [
                {
                    "streams": n,
                    "cpu_pct": c,
                    "cpu_target_pct": CPU_TARGET.get(n),
                    "kib_per_stream": m,
                    "kib_target": RSS_TARGET.get(n),
                    "us_per_heartbeat": us,
                }
                for n, c, m, us, _ in rows
            ],
        },
    )


if __name__ == "__main__":
    install_uvloop()
    asyncio.run(main())
