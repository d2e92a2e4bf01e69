"""``--demo``: a small cast on the embedded server chats with you in plausible conversations,
mostly messages and renames; a new conversation starts rarely."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from core import Client, ClientConfig
from core.model import ConversationView, MessageView
from desktop.demo import NEW_EVERY_STEPS, DemoDevice
from desktop.demo_script import CAST, GENERIC, LATER, THREADS
from desktop.embedded import EmbeddedServer
from desktop.profile import Profile
from tests.support.waiting import wait_until

TITLES = {t for thread in (*THREADS, *LATER) for t in thread.titles}
LINES = {text for thread in (*THREADS, *LATER) for _who, text in thread.lines} | set(GENERIC)


@contextlib.asynccontextmanager
async def served(tmp_path: Path) -> AsyncIterator[tuple[EmbeddedServer, Client, Profile]]:
    """The embedded server, "me" on it, and my profile (where the demo keeps its caches).
    Not a fixture: the client's tasks must run on the test's own loop."""
    server = EmbeddedServer(tmp_path / "server")
    await asyncio.to_thread(server.start)
    me = None
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
        yield server, me, Profile("p", None, "me", tmp_path / "d", tmp_path / "c")
    finally:
        if me is not None:
            await me.close()
        await asyncio.to_thread(server.stop)


async def test_the_cast_chats_and_renames_in_plausible_conversations(tmp_path: Path) -> None:
    async with served(tmp_path) as (server, me, profile):
        await chats_and_renames(server, me, profile)


async def chats_and_renames(server: EmbeddedServer, me: Client, profile: Profile) -> None:
    titles: dict[str, str] = {}
    renames: list[tuple[str, str]] = []
    written: list[MessageView] = []

    def on_conversation(view: ConversationView) -> None:
        old = titles.get(view.id)
        if old is not None and view.title != old:
            renames.append((old, view.title))
        titles[view.id] = view.title

    me.events.conversation_changed.connect(on_conversation)
    me.events.messages_added.connect(lambda _cid, ms: written.extend(ms))
    demo = await DemoDevice.start(server, profile, me, interval_s=0.05, seed=7)
    try:
        # The script's three conversations are there from the start, shared with me.
        await wait_until(
            lambda: all(any(v.title in t.titles for v in me.conversations()) for t in THREADS),
            "the script's conversations at my device",
        )
        # ~12% of the steps rename, ~20 steps a second: both arrive within seconds unless they
        # are not made or not synced.
        await wait_until(lambda: renames and len(written) >= 10, "renames and messages", timeout=30)
    finally:
        await demo.stop()
    assert set(titles.values()) <= TITLES, titles
    assert all(old in TITLES and new in TITLES for old, new in renames), renames
    assert {m.author for m in written} <= set(CAST) and len({m.author for m in written}) >= 2
    assert {m.body for m in written} <= LINES
    for view in me.conversations():
        assert "me" in view.members and view.creator in CAST
        assert set(view.members) - {"me"} <= set(CAST)


async def test_new_conversations_are_rare_and_a_restart_reuses_them(tmp_path: Path) -> None:
    async with served(tmp_path) as (server, me, profile):
        await rare_and_reused(server, me, profile)


async def rare_and_reused(server: EmbeddedServer, me: Client, profile: Profile) -> None:
    demo = await DemoDevice.start(server, profile, me, interval_s=3600, seed=3)
    try:
        kinds = []
        for _ in range(240):
            kinds.append(await demo.step())
            if kinds[-1] == "new":  # its members' devices learn of it before they talk in it
                assert await demo.settled()
        started = sorted({v.id for v in demo.shared()})
    finally:
        await demo.stop()
    assert kinds.count("message") >= 0.75 * len(kinds), kinds
    assert kinds.count("rename") >= 10
    new_at = [i + 1 for i, kind in enumerate(kinds) if kind == "new"]
    assert new_at, "a new conversation starts now and then"
    assert all(b - a >= NEW_EVERY_STEPS for a, b in zip([0, *new_at], new_at, strict=False))
    assert len(started) == len(THREADS) + len(new_at) <= len(THREADS) + len(LATER)
    # A second run (the app restarted) finds the cast's conversations instead of new copies.
    again = await DemoDevice.start(server, profile, me, interval_s=3600, seed=4)
    try:
        assert sorted({v.id for v in again.shared()}) == started
    finally:
        await again.stop()
