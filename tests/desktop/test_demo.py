"""``--demo``: a simulated second device on the embedded server makes live sync visible."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from core import Client, ClientConfig
from core.model import ConversationView, MessageView
from desktop.demo import FRIEND, DemoDevice
from desktop.embedded import EmbeddedServer
from desktop.profile import Profile


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
        # What this device sees arrive from the demo device, as events.
        titles: dict[str, str] = {}
        renames: list[tuple[str, str, str]] = []
        written: list[MessageView] = []
        renamed, wrote = asyncio.Event(), asyncio.Event()

        def on_conversation(view: ConversationView) -> None:
            old = titles.get(view.id)
            if old is not None and view.title != old:
                renames.append((view.id, old, view.title))
                renamed.set()
            titles[view.id] = view.title

        def on_messages(cid: str, messages: list[MessageView]) -> None:
            written.extend(m for m in messages if m.author == FRIEND)
            if written:
                wrote.set()

        me.events.conversation_changed.connect(on_conversation)
        me.events.messages_added.connect(on_messages)
        profile = Profile("p", None, "me", tmp_path / "d", tmp_path / "c")
        demo = await DemoDevice.start(server, profile, me, interval_s=0.05)
        # About 15% of the steps rename, ~20 steps a second: within 30 s one reaches this device
        # unless renames are not made or not synced.
        async with asyncio.timeout(30):
            await renamed.wait()
            await wrote.wait()
        cid, old, new = renames[0]
        assert re.fullmatch(r"Demo thread \d+", old.split(" ·")[0]), old  # the demo created it
        assert re.fullmatch(re.escape(old.split(" ·")[0]) + r" · \d+", new), (old, new)
        view = me.conversation(cid)
        assert view is not None and view.creator == FRIEND and "me" in view.members
        assert all(m.conversation_id in titles and m.body for m in written)
        assert all(FRIEND in c.members for c in me.conversations())
    finally:
        if demo is not None:
            await demo.stop()
        if me is not None:
            await me.close()
        await asyncio.to_thread(server.stop)
