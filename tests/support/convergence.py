"""A random workload of client operations, and the check that clients converged on the server.

``random_ops`` drives ``Client``s (create, rename, pin, send, read, delete); ``assert_converged``
then compares what every client shows with its user's server snapshot.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any

from core import Client

from .live_server import LiveServer
from .waiting import wait_until


async def random_ops(
    rng: random.Random,
    actors: list[Client],
    n: int,
    pace: Callable[[], Awaitable[Any]] | None = None,
) -> None:
    """``n`` random operations, each by a random actor; ``pace`` is awaited before each one
    (without it, every seventh operation waits for that actor to be in sync)."""
    for i in range(n):
        if pace is not None:
            await pace()
        actor = rng.choice(actors)
        views = [v for v in actor.conversations() if not v.failed]
        roll = rng.random()
        others = [u for u in ("alice", "bob", "carol") if u != actor.me]
        if not views or roll < 0.12:
            members = [u for u in others if rng.random() < 0.7]
            await actor.create_conversation(f"conv {i}", members)
            continue
        view = rng.choice(views)
        if roll < 0.35:
            await actor.rename_conversation(view.id, f"title {i} by {actor.me}")
        elif roll < 0.45:
            await actor.set_pinned(view.id, not view.pinned)
        elif roll < 0.80:
            await actor.send_message(view.id, f"message {i} from {actor.me}")
        elif roll < 0.92:
            await actor.mark_read(view.id)
        elif view.creator == actor.me:
            await actor.delete_conversation(view.id)
        if pace is None and i % 7 == 0:
            await actor.wait_synced(20)  # pace by condition so sync interleaves with edits


def client_state(client: Client) -> dict[str, tuple[Any, ...]]:
    """What a client shows, per conversation, in a form comparable with ``server_state``."""
    return {
        v.id: (
            v.title,
            v.pinned,
            v.version,
            tuple(sorted(v.members)),
            v.message_count,
            v.unread,
            tuple(m.id for m in client.messages(v.id)),
        )
        for v in client.conversations()
    }


def server_state(snap: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    """A user's server snapshot in the form of ``client_state``."""
    return {
        c["id"]: (
            c["title"],
            c["pinned"],
            c["version"],
            tuple(sorted(c["members"])),
            c["message_count"],
            c["unread"],
            tuple(m["id"] for m in snap["messages"].get(c["id"], [])),
        )
        for c in snap["conversations"]
    }


async def assert_converged(server: LiveServer, clients: list[Client]) -> None:
    """Every client shows exactly its user's server state and applied no change twice."""
    users = sorted({c.me for c in clients})
    want = {u: server_state(await server.snapshot(u)) for u in users}
    for c in clients:
        await wait_until(
            lambda c=c: client_state(c) == want[c.me],
            f"{c.me}'s client to equal the server",
            timeout=30,
        )
        seqs = [seq for seq, _, _ in c.store.applied_log()]
        assert len(seqs) == len(set(seqs)), "a change was applied twice"
        assert seqs == sorted(seqs)
    assert any(want.values()), "the run must leave some conversations"
