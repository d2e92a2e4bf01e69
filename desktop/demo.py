"""``--demo``: a simulated second device (another account on the embedded server) that creates,
renames and writes in conversations shared with you every few seconds, so live sync is visible
at a glance."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import tempfile
from typing import Any

from core import Client, ClientConfig

log = logging.getLogger(__name__)
FRIEND = "demo-friend"
LINES = [
    "Morning! Did the build go green?",
    "Pushed the fix, have a look.",
    "Lunch at noon?",
    "I renamed the thread, hope that's ok.",
    "Can you review the release notes?",
    "On a call, back in 10.",
    "Shipping it. 🚀",
    "Who's on call tonight?",
]


class DemoDevice:
    def __init__(self, client: Client, me: str, interval_s: float) -> None:
        self.client = client
        self.me = me
        self.interval_s = interval_s
        self.rng = random.Random()
        self.task: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls, embedded: Any, profile: Any, mine: Client, interval_s: float = 3.0
    ) -> DemoDevice:
        token = await embedded.add_user(FRIEND)
        tmp = tempfile.mkdtemp(prefix="concord-demo-")
        client = await Client.open(
            ClientConfig(
                server_url=embedded.url,
                data_dir=tmp,
                username=FRIEND,
                runtime_dir=tmp,
                profile="demo",
                refresh_token=token,
            )
        )
        demo = cls(client, profile.username, interval_s)
        demo.task = asyncio.create_task(demo._run(), name="concord-demo")
        return demo

    async def step(self, i: int) -> None:
        convs = self.client.conversations()
        roll = self.rng.random()
        if not convs or (roll < 0.15 and len(convs) < 8):
            await self.client.create_conversation(f"Demo thread {i}", [self.me])
        elif roll < 0.3:
            conv = self.rng.choice(convs)
            await self.client.rename_conversation(conv.id, f"{conv.title.split(' ·')[0]} · {i}")
        else:
            conv = self.rng.choice(convs)
            await self.client.send_message(conv.id, self.rng.choice(LINES))

    async def _run(self) -> None:
        for i in range(100_000):  # bounded; one step every few seconds
            try:
                await self.step(i)
            except (KeyError, ValueError) as exc:
                log.info("demo step skipped: %s", exc)
            await asyncio.sleep(self.interval_s * self.rng.uniform(0.5, 1.5))

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await self.client.close()
