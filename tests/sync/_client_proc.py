"""A Concord client in its own process, driven over stdin/stdout with JSON lines (for the tests
that kill -9 a client, or run several processes of one device).

    python -m tests.sync._client_proc --server URL --data DIR --runtime DIR --user NAME

Commands: {"op": "create"|"send"|"rename"|"state"|"status"|"wait_synced"|"stats", ...}.
Answers: {"ok": true, "result": ...} or {"ok": false, "error": "..."}; status changes are
printed as {"event": "status", ...} lines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from core import Client, ClientConfig
from core.engine import EngineConfig

FAST = EngineConfig(
    backoff_base_s=0.05, backoff_cap_s=0.5, poll_after_s=0.5, poll_min_s=0.3, poll_max_s=1.0
)


def out(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def handle(client: Client, cmd: dict[str, Any]) -> Any:
    op = cmd["op"]
    if op == "create":
        return (await client.create_conversation(cmd["title"], cmd.get("members", []))).id
    if op == "send":
        return (await client.send_message(cmd["cid"], cmd["body"])).id
    if op == "rename":
        await client.rename_conversation(cmd["cid"], cmd["title"])
        return None
    if op == "wait_synced":
        await client.wait_synced(cmd.get("timeout", 20))
        return None
    if op == "status":
        s = client.status
        return {"state": s.state, "role": s.role, "leader": client.engine is not None}
    if op == "state":
        return {
            v.id: {
                "title": v.title,
                "messages": [m.body for m in client.messages(v.id)],
                "pending": v.pending,
            }
            for v in client.conversations()
        }
    if op == "stats":
        return {
            "applied": [s for s, _, _ in client.store.applied_log()],
            "outbox": len(client.store.outbox()),
        }
    raise ValueError(f"unknown op {op}")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--runtime", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password")
    ap.add_argument("--heartbeat", type=float, default=1.0)
    args = ap.parse_args()
    client = await Client.open(
        ClientConfig(
            server_url=args.server,
            data_dir=args.data,
            username=args.user,
            password=args.password,
            runtime_dir=args.runtime,
            engine=FAST,
            apply_log=True,
            heartbeat_s=args.heartbeat,
        )
    )
    client.on(
        "status_changed", lambda s: out({"event": "status", "state": s.state, "role": s.role})
    )
    out({"event": "ready", "role": client.status.role})
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        cmd = json.loads(line)
        if cmd.get("op") == "quit":
            break
        try:
            out({"ok": True, "id": cmd.get("id"), "result": await handle(client, cmd)})
        except Exception as exc:
            out({"ok": False, "id": cmd.get("id"), "error": f"{type(exc).__name__}: {exc}"})
    await client.close()


if __name__ == "__main__":
    asyncio.run(main())
