"""Benchmark: how soon a client is back after its server was down, with the default reconnect
policy beside the one before Step 5 (stream cap 30 s; the outbox waits out its own backoff).

Each cycle: the server process is killed, a message is queued and its send fails, the outage
lasts 1 to 4 s (seeded), the server restarts on the same port and data. Measured per cycle:
"server up → stream live" (from the moment the server answers its health check) and "server
reached (stream live or a poll through) → outbox empty".

    python tests/bench/reconnect.py [--cycles 8] [--seed 5]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from core import Client, ClientConfig  # noqa: E402
from core.engine import EngineConfig  # noqa: E402
from tests.support.live_server import PASSWORD, add_users  # noqa: E402
from tests.support.procs import ServerProc  # noqa: E402

DEFAULT = EngineConfig()
BEFORE = replace(DEFAULT, backoff_cap_s=30.0)  # and no wake of the outbox (below)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))] if values else 0.0


async def until(predicate, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step timed out")
        await asyncio.sleep(0.005)


async def run_policy(name: str, engine: EngineConfig, cycles: int, seed: int) -> dict:
    rng = random.Random(seed)
    root = Path(tempfile.mkdtemp(prefix=f"concord-reconnect-{name}-"))
    (root / "srv").mkdir()
    add_users(root / "srv")
    server = await ServerProc(root / "srv").start()
    client = await Client.open(
        ClientConfig(server.url, root / "cache", "alice", PASSWORD, root / "run", engine=engine)
    )
    reached_at: list[float] = []

    def on_status(status) -> None:  # type: ignore[no-untyped-def]
        if status.state in ("live", "polling"):
            reached_at.append(time.monotonic())

    client.events.status_changed.connect(on_status)
    up_to_live: list[float] = []
    reach_to_empty: list[float] = []
    try:
        await until(lambda: client.status.state == "live")
        if name == "before":
            assert client.engine is not None
            client.engine.on_reachable.clear()  # the outbox no longer hears the server is back
        conv = await client.create_conversation("bench")
        await client.wait_synced(10)
        for i in range(cycles):
            await server.kill()
            await until(lambda: client.status.state == "unreachable")
            await client.send_message(conv.id, f"queued {i}")
            await until(lambda: any(e.attempts >= 1 for e in client.store.outbox()))
            await asyncio.sleep(rng.uniform(1.0, 4.0))  # the outage
            reached_at.clear()
            await server.start()
            up = time.monotonic()
            await until(lambda: client.status.state == "live")
            up_to_live.append(time.monotonic() - up)
            await until(lambda: not client.store.outbox())
            reach_to_empty.append(max(0.0, time.monotonic() - min(reached_at)))
    finally:
        await client.close()
        await server.stop()
    return {"up_to_live": up_to_live, "reach_to_empty": reach_to_empty}


def row(label: str, values: list[float]) -> str:
    return (
        f"{label:<34} p50 {pct(values, 50) * 1000:8.0f} ms   p99 {pct(values, 99) * 1000:8.0f} ms"
        f"   max {max(values) * 1000:8.0f} ms"
    )


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=8)
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    print(f"reconnect after a server outage: {args.cycles} cycles per policy, seed {args.seed}")
    for name, engine in (("default", DEFAULT), ("before", BEFORE)):
        res = await run_policy(name, engine, args.cycles, args.seed)
        label = "default (cap 10 s, outbox woken)" if name == "default" else "before Step 5"
        print(f"  {label}")
        print("    " + row("server up → stream live", res["up_to_live"]))
        print("    " + row("server reached → outbox empty", res["reach_to_empty"]))


if __name__ == "__main__":
    asyncio.run(main())
