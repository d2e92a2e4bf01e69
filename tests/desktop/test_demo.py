"""``--demo``: a simulated second device on the embedded server makes live sync visible."""

from __future__ import annotations

import asyncio
from pathlib import Path

from core import Client, ClientConfig
from desktop.demo import FRIEND, DemoDevice
from desktop.embedded import EmbeddedServer
from desktop.profile import Profile
from tests.sync.conftest import wait_until


async def test_demo_device_creates_renames_and_writes(tmp_path: Path) -> None:
    server = EmbeddedServer(tmp_path / "server")
    await asyncio.to_thread(server.start)
    me = demo = None
    try:
        token = await server.account_token("me")
        me = await Client.open(
            ClientConfig(
                server.url,
                tmp_path / "me",
                "me",
                profile="me",
                runtime_dir=tmp_path / "run",
                refresh_token=token,
            )
        )
        profile = Profile("p", None, "me", tmp_path / "d", tmp_path / "c")
        demo = await DemoDevice.start(server, profile, me, interval_s=0.05)
        await wait_until(
            lambda: (
                me.conversations()
                and any(m.author == FRIEND for c in me.conversations() for m in me.messages(c.id))
            ),
            timeout=20,
            what="the demo friend's conversations and messages",
        )
        assert all(FRIEND in c.members for c in me.conversations())
    finally:
        if demo is not None:
            await demo.stop()
        if me is not None:
            await me.close()
        await asyncio.to_thread(server.stop)
