"""Benchmark: two server instances on one PostgreSQL database and one Redis — how long a write
made through instance A takes to reach subscribers streaming from instance B, and what each
delivered change costs Redis and PostgreSQL.

Each level (1, 100, 1,000 subscribers) is a conversation of the sender ``u0`` and N members;
each member has one stream open on B; every write is a real ``POST …/messages`` on A, sent only
after the previous one reached every stream (or timed out). Latency per delivery: from just
before the POST (so it includes the commit of N + 1 feed rows) to the moment a stream read it,
as seen by this load client (raw sockets, same 2 cores); and "ans": from the POST's answer —
the write committed and its pokes queued, i.e. the publish — to each receipt. Then a control
run (the largest level with its streams on A, the writer's instance: what PostgreSQL costs
without a cross-instance hop), and, if ``--broadcast-devices`` > 0, the 1,000-member
broadcast of ``broadcast.py`` (3 devices each) with half the users streaming from A and half
from B.

Counted per window (``_engine_counts.py``): the two server processes' own CPU (``/proc``) and
RSS; Redis commands from ``INFO commandstats`` of a private ``redis-server`` started for the run
(``--shared-redis``: the test one, whose counts include whatever else uses it); for the
benchmark's own database, PostgreSQL transactions and rows from ``pg_stat_database`` and
statements (queries apart from transaction control) from ``pg_stat_statements``, which
``.ci/services.sh`` preloads and the run creates as ``--pg-superuser``. Each count is the write
window's less the rate of an idle window of the same length just before it (heartbeats,
stream-cap refreshes).

    eval "$(.ci/services.sh start)"
    nice -n 5 python tests/bench/cross_instance.py [--levels 1,100,1000] [--writes 200] [--json F]

Uses ``CONCORD_TEST_POSTGRES_URL`` (a role that may CREATE DATABASE: the benchmark makes and
drops its own) and, with ``--shared-redis``, ``CONCORD_TEST_REDIS_URL`` (keys and channels under
a prefix of its own, ``--redis-prefix``).
Target (issue 13): p99 ≤ 100 ms at 1,000 subscribers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import secrets
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import redis
from _cross_report import LABEL, Result, report, summary
from _engine_counts import Counters, drop_database, net, superuser_url, with_db
from _streams import (
    Deployment,
    Server,
    Stream,
    cpu_seconds,
    free_port,
    install_uvloop,
    make_data,
    new_marks,
    open_streams,
    raise_nofile,
    write_json,
)

from tests.support.services import private_redis  # _streams put the repository on sys.path

MARK = re.compile(rb"xi-(\d+)\b")
WAIT_S = 10.0  # per write, for every subscriber to have it


@dataclass
class Receipts:
    """Per write: every stream's receive time, and an event once all ``expected`` have it."""

    expected: int
    times: dict[int, list[float]] = field(default_factory=dict)
    done: dict[int, asyncio.Event] = field(default_factory=dict)

    def event(self, i: int) -> asyncio.Event:
        return self.done.setdefault(i, asyncio.Event())

    def on_data(self, stream: Stream, chunk: bytes, now: float) -> None:
        for i in new_marks(stream, chunk, MARK):
            got = self.times.setdefault(i, [])
            got.append(now)
            if len(got) >= self.expected:
                self.event(i).set()


async def run_level(
    label: str,
    servers: dict[str, Server],
    placement: list[str],  # per token: which instance streams it
    tokens: list[str],
    sender: str,
    members: list[str],
    writes: int,
    counters: Counters,
) -> Result:
    a = servers["A"]
    receipts = Receipts(len(tokens))
    streams: list[Stream] = []
    all_ms: list[float] = []
    last_ms: list[float] = []
    post_ms: list[float] = []
    answered_ms: list[float] = []
    lost = 0
    async with httpx.AsyncClient(base_url=a.base, timeout=30) as c:
        h = {"Authorization": f"Bearer {sender}"}
        cid = str(uuid.uuid4())
        r = await c.post(
            "/conversations", headers=h, json={"id": cid, "title": label, "members": members}
        )
        r.raise_for_status()
        try:
            for name, server in servers.items():
                mine = [t for t, p in zip(tokens, placement, strict=True) if p == name]
                if mine:
                    streams += await open_streams(server.port, mine, receipts.on_data)
            await asyncio.sleep(2.0)  # every stream's catch-up done before timing
            s0 = await counters.snapshot()
            s1 = await counters.snapshot()  # s0 → s1: the idle baseline
            cpu_a = {n: cpu_seconds(s.pid) for n, s in servers.items()}
            wall_a = time.monotonic()
            for i in range(writes):
                t0 = time.perf_counter()
                resp = await c.post(
                    f"/conversations/{cid}/messages",
                    headers=h,
                    json={"id": str(uuid.uuid4()), "body": f"xi-{i} hello"},
                )
                resp.raise_for_status()
                t_answer = time.perf_counter()
                post_ms.append((t_answer - t0) * 1000)
                try:
                    await asyncio.wait_for(receipts.event(i).wait(), WAIT_S)
                except TimeoutError:
                    pass
                got = receipts.times.get(i, [])
                lost += len(tokens) - len(got)
                all_ms += [(t - t0) * 1000 for t in got]
                answered_ms += [(t - t_answer) * 1000 for t in got]
                if got:
                    last_ms.append((max(got) - t0) * 1000)
            wall = time.monotonic() - wall_a
            cpu = {n: cpu_seconds(s.pid) - cpu_a[n] for n, s in servers.items()}
            s2 = await counters.snapshot()
        finally:
            for s in streams:
                s.close()
    return Result(
        label,
        len(tokens),
        writes,
        all_ms,
        last_ms,
        post_ms,
        answered_ms,
        lost,
        cpu,
        wall,
        {k: v for k, v in net(s0, s1, s2).items() if not k.startswith("pg:")},
        {k[3:]: v for k, v in net(s0, s1, s2).items() if k.startswith("pg:")},
    )


async def bench(args: argparse.Namespace, admin_url: str, db_url: str, redis_url: str) -> None:
    counters = Counters(redis_url, admin_url, db_url, args.pg_superuser)
    if counters.statements_missing:
        print(f"PostgreSQL statements not counted: {counters.statements_missing}")
    levels = sorted(int(x) for x in args.levels.split(","))
    devices = max(1, args.broadcast_devices)
    t0 = time.monotonic()
    dep: Deployment = await make_data(max(levels) + 1, devices, database=db_url)
    n_users = len(dep.usernames)
    print(
        f"data: {n_users} users x {devices} devices in PostgreSQL ({time.monotonic() - t0:.0f} s)"
    )
    prefix = f"concord-bench-{secrets.token_hex(4)}:"
    extra = ["--database", db_url, "--redis", redis_url, "--redis-prefix", prefix]
    data_b = Path(tempfile.mkdtemp(prefix="concord-bench-b-"))
    streams = n_users * devices
    servers = {
        "A": Server(dep.data, args.heartbeat, extra=extra, streams=streams),
        "B": Server(data_b, args.heartbeat, extra=extra, streams=streams),
    }
    results: list[Result] = []
    try:
        for s in servers.values():
            await s.wait_up()
        sender = dep.tokens[0]  # u0, device 0: writes through A, no stream
        for n in levels:
            tokens = dep.tokens[1 : n + 1]  # u1…un, device 0
            r = await run_level(
                LABEL,
                servers,
                ["B"] * n,
                tokens,
                sender,
                dep.usernames[1 : n + 1],
                args.writes if n < 1000 else args.writes_1000,
                counters,
            )
            report(r, servers)
            results.append(r)
        if args.control:
            n = max(levels)  # the same writes with every subscriber on the writer's instance
            r = await run_level(
                "control: streams on A",
                servers,
                ["A"] * n,
                dep.tokens[1 : n + 1],
                sender,
                dep.usernames[1 : n + 1],
                args.writes if n < 1000 else args.writes_1000,
                counters,
            )
            report(r, servers)
            results.append(r)
        if args.broadcast_devices > 0:
            members = dep.usernames[1 : max(levels) + 1]
            idx = [i for i, u in enumerate(dep.owner) if 1 <= u <= len(members)]
            tokens = [dep.tokens[i] for i in idx]
            # Device-major tokens, so a user's devices all land on one instance: half the
            # users stream from A (the writer's), half from B.
            placement = ["A" if k % 2 else "B" for k in range(len(tokens))]
            r = await run_level(
                "broadcast over 2 instances (streams split A/B)",
                servers,
                placement,
                tokens,
                sender,
                members,
                args.writes_1000,
                counters,
            )
            report(r, servers)
            results.append(r)
    finally:
        for s in servers.values():
            s.stop()
        shutil.rmtree(dep.data, ignore_errors=True)
        shutil.rmtree(data_b, ignore_errors=True)
        with contextlib.suppress(redis.RedisError):  # cleanup: never hide the results
            keys = list(counters.redis.scan_iter(match=f"{prefix}*", count=1000))
            if keys:
                counters.redis.delete(*keys)
    print(
        "\ncross-instance publish -> receive, 2 instances, PostgreSQL + Redis, "
        f"heartbeat {args.heartbeat:g} s"
    )
    print(
        f"{'run':>28} | {'subs':>5} | {'p50':>6} {'p99':>6} {'max':>6} {'target':>7} | "
        f"{'last p99':>8} | {'ans p99':>7} | {'redis/chg':>9} {'pg q/chg':>8} {'pg tx/chg':>9} | "
        f"{'µs CPU/delivery A+B':>19}"
    )
    rows = [summary(r) for r in results]
    for x in rows:
        tgt = f"≤ {x['target_p99_ms']:g}" if x["target_p99_ms"] else "-"
        q = x["pg_queries_per_change"]
        print(
            f"{x['run'][:28]:>28} | {x['subscribers']:>5} | {x['p50_ms']:>6.1f} "
            f"{x['p99_ms']:>6.1f} {x['max_ms']:>6.1f} {tgt:>7} | "
            f"{x['last_p99_ms']:>8.1f} | {x['answered_p99_ms']:>7.1f} | "
            f"{x['redis_per_change']:>9.3f} {'n/a' if q is None else f'{q:.3f}':>8} "
            f"{x['pg_transactions_per_change']:>9.3f} | {x['cpu_us_per_delivery']:>19.0f}"
        )
    write_json(args.json, {"heartbeat_s": args.heartbeat, "runs": rows})


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--levels", default="1,100,1000")
    ap.add_argument("--writes", type=int, default=200, help="per level below 1,000")
    ap.add_argument("--writes-1000", type=int, default=100, help="at 1,000 and the broadcast")
    ap.add_argument("--broadcast-devices", type=int, default=3, help="0: no broadcast run")
    ap.add_argument(
        "--no-control",
        dest="control",
        action="store_false",
        help="skip the control run (the largest level with its streams on the writer's instance)",
    )
    ap.add_argument("--heartbeat", type=float, default=15.0)
    ap.add_argument(
        "--pg-superuser",
        default="postgres",
        help="creates pg_stat_statements and reads it (trust auth in the test cluster)",
    )
    ap.add_argument("--json", default="", help="also write the summary to this file")
    ap.add_argument(
        "--shared-redis",
        dest="own_redis",
        action="store_false",
        help="use CONCORD_TEST_REDIS_URL (counts include anything else using it) instead of a "
        "private redis-server",
    )
    args = ap.parse_args()
    pg_url = os.environ.get("CONCORD_TEST_POSTGRES_URL")
    redis_url = os.environ.get("CONCORD_TEST_REDIS_URL")
    if not pg_url or not redis_url:
        raise SystemExit('needs PostgreSQL and Redis: eval "$(.ci/services.sh start)"')
    stack = contextlib.ExitStack()
    own_redis = args.own_redis and shutil.which("redis-server") is not None
    if own_redis:
        # A private Redis: INFO commandstats then counts this benchmark's commands alone.
        port = free_port()
        stack.enter_context(private_redis(port, Path(tempfile.mkdtemp(prefix="bench-redis-"))))
        redis_url = f"redis://127.0.0.1:{port}/0"
    print(f"Redis: {'a private redis-server' if own_redis else redis_url}")
    raise_nofile()
    dbname = f"concord_bench_{secrets.token_hex(4)}"
    with psycopg.connect(pg_url, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{dbname}"')
    try:
        await bench(args, pg_url, with_db(pg_url, dbname), redis_url)
    finally:
        drop_database(pg_url, superuser_url(pg_url, args.pg_superuser), dbname)
        stack.close()


if __name__ == "__main__":
    install_uvloop()
    asyncio.run(main())
