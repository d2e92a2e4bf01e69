"""A Concord client in its own process, driven over stdin/stdout with JSON lines (for the tests
that kill -9 a client, or run several processes of one device).

    python -m tests.support._client_proc --server URL --data DIR --runtime DIR --user NAME

Commands: {"op": "create"|"send"|"rename"|"state"|"status"|"wait_synced"|"stats"|"set_draft"|
"draft", ...}. Answers: {"ok": true, "result": ...} or {"ok": false, "error": "..."}; status
changes are printed as {"event": "status", "state", "role", "t", "unsent"} lines, draft changes
as {"event": "draft_changed", "cid", "text", "t"}, the client's ``outbox_changed`` as {"event":
"outbox", "count", "leader", "t"}; ``t`` is on the machine-wide monotonic clock
(``time.monotonic()``, CLOCK_MONOTONIC: one clock for every process of the host), ``unsent`` the
shared cache's unsettled outbox entries at that moment (counted as ``outbox_changed`` counts).
The ``ready`` line carries the same ``state``, ``t`` and ``unsent`` as a start.
``CONCORD_CLIENT_LOG=INFO`` (or another level) logs the client to stderr, each line stamped with
that clock and the pid.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import logging
import os
import sys
import time
from typing import Any

from core import Client, ClientConfig
from core.engine import EngineConfig

FAST = EngineConfig(
    backoff_base_s=0.05, backoff_cap_s=0.5, poll_after_s=0.5, poll_min_s=0.3, poll_max_s=1.0
)


def unsent(client: Client) -> int:
    """Outbox entries not yet acknowledged and applied (what ``outbox_changed`` counts)."""
    return sum(e.state in ("queued", "sent") for e in client.store.outbox())


def out(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


_watched: set[int] = set()
_resolving: set[asyncio.Future[Any]] = set()


def _watch_conflicts(client: Client, policy: str) -> None:
    """Print each ``conflict`` event as an ``{"event": "conflict"}`` line and answer it at once,
    as a user would: ``reload`` lets the server's version stand, ``keep_mine`` re-applies ours
    (through ``resolve_conflict`` when the client has it, else ``keep_mine``/nothing)."""
    if id(client) in _watched:
        return
    _watched.add(id(client))

    def done(fut: asyncio.Future[Any]) -> None:
        _resolving.discard(fut)
        if not fut.cancelled() and fut.exception() is not None:
            out({"event": "conflict_error", "error": repr(fut.exception())})

    def on_conflict(conflict: Any) -> None:
        theirs = conflict.theirs
        out(
            {
                "event": "conflict",
                "cid": conflict.conversation_id,
                "mine": conflict.mine.get("title"),
                "theirs": theirs.title if theirs is not None else None,
                "entry": conflict.entry_id,
            }
        )
        keep = policy == "keep_mine"
        resolve = getattr(client, "resolve_conflict", None)
        try:
            if resolve is not None:  # (conflict, keep_mine) or (conversation id, keep_mine)
                first = next(iter(inspect.signature(resolve).parameters), "")
                what = conflict if "conflict" in first else conflict.conversation_id
                result = resolve(what, keep_mine=keep)
            elif keep:
                result = client.keep_mine(conflict)
            else:
                return  # today's outbox already dropped the losing action
        except Exception as exc:
            out({"event": "conflict_error", "error": repr(exc)})
            return
        if inspect.isawaitable(result):
            fut = asyncio.ensure_future(result)
            _resolving.add(fut)
            fut.add_done_callback(done)

    client.events.conflict.connect(on_conflict)


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
    if op == "set_draft":
        client.set_draft(cmd["cid"], cmd["text"])
        return None
    if op == "draft":
        return client.draft(cmd["cid"])
    if op == "stats":
        return {
            "applied": [s for s, _, _ in client.store.applied_log()],
            "outbox": len(client.store.outbox()),
        }
    if op == "network_changed":  # as on "network up" from the OS (a no-op in a follower)
        client.network_changed()
        return None
    if op == "watch_conflicts":
        _watch_conflicts(client, cmd.get("policy", "reload"))
        return None
    if op == "outbox":
        return [
            {
                "id": e.id,
                "op": e.op,
                "target": e.target,
                "state": e.state,
                "attempts": e.attempts,
                "error": e.error,
                "title": e.body.get("title"),
                "body": e.body.get("body"),
            }
            for e in client.store.outbox()
        ]
    raise ValueError(f"unknown op {op}")


class _MonotonicFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{time.monotonic():.3f} {os.getpid()} {record.name}: {record.getMessage()}"


async def main() -> None:
    if level := os.environ.get("CONCORD_CLIENT_LOG"):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_MonotonicFormatter())
        logging.basicConfig(level=level.upper(), handlers=[handler])
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
    client.events.status_changed.connect(
        lambda s: out(
            {
                "event": "status",
                "state": s.state,
                "role": s.role,
                "t": time.monotonic(),
                "unsent": unsent(client),
            }
        ),
    )
    client.events.outbox_changed.connect(
        lambda count: out(
            {
                "event": "outbox",
                "count": count,
                "leader": client.engine is not None,
                "t": time.monotonic(),
            }
        ),
    )
    client.events.draft_changed.connect(
        lambda cid, text: out(
            {"event": "draft_changed", "cid": cid, "text": text, "t": time.monotonic()}
        ),
    )
    status = client.status
    out(
        {
            "event": "ready",
            "role": status.role,
            "state": status.state,
            "t": time.monotonic(),
            "unsent": unsent(client),
        }
    )
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
