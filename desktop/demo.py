"""``--demo``: a small cast (Priya, Marco, Lena, Sam), each an account of their own on the
embedded server, who talk with you in a few conversations (:mod:`desktop.demo_script`), so live
sync is visible at a glance. Most steps are a chat line or a rename in a conversation that exists;
a new conversation starts rarely (at most one per :data:`NEW_EVERY_STEPS` steps), so the list
stays recognisable."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from pathlib import Path
from typing import Any

from core import Client, ClientConfig
from core.model import ConversationView

from .demo_script import CAST, GENERIC, LATER, THREADS, Thread, thread_of

log = logging.getLogger(__name__)
INTERVAL_S = 4.0  # one step every 2 to 6 s
RENAME_CHANCE = 0.12
NEW_CHANCE = 0.04
NEW_EVERY_STEPS = 40  # steps between two new conversations, at least (a few minutes)
LIVE_TIMEOUT_S = 10.0


class DemoDevice:
    """The cast's devices: one :class:`Client` per person (``clients``, by name), sharing
    conversations with ``me``. :meth:`step` makes one thing happen."""

    def __init__(
        self, clients: dict[str, Client], me: str, interval_s: float = INTERVAL_S, seed: Any = None
    ) -> None:
        self.clients = clients
        self.me = me
        self.interval_s = interval_s
        self.rng = random.Random(seed)
        self.task: asyncio.Task[None] | None = None
        self.steps = 0
        self.last_new = 0  # the step that started the newest conversation
        self._next_line: dict[str, int] = {}  # conversation id -> its thread's next line

    @classmethod
    async def start(
        cls,
        embedded: Any,
        profile: Any,
        mine: Client | None = None,
        interval_s: float = INTERVAL_S,
        seed: Any = None,
    ) -> DemoDevice:
        """Sign the cast in (their caches live in the profile's data directory, so a restart
        finds the same conversations), start the script's conversations that are missing,
        then play on in the background."""
        base = Path(profile.data_dir) / "demo"
        clients: dict[str, Client] = {}
        try:
            for name in CAST:
                token = await embedded.add_user(name)
                clients[name] = await Client.open(
                    ClientConfig(
                        server_url=embedded.url,
                        data_dir=base / name,
                        username=name,  # the bus in the default runtime directory: its
                        # socket path must stay short, which one under the data dir may not
                        profile=f"demo-{name}",
                        refresh_token=token,
                    )
                )
        except BaseException:
            for client in clients.values():
                await client.close()
            raise
        demo = cls(clients, profile.username, interval_s, seed)
        await demo.seed()
        demo.task = asyncio.create_task(demo._run(), name="concord-demo")
        return demo

    def set_server_url(self, url: str) -> None:
        """The embedded server moved (another process hosts it now)."""
        for client in self.clients.values():
            client.set_server_url(url)

    async def seed(self) -> None:
        """Start each of the script's first conversations that does not exist yet."""
        await asyncio.gather(*(_live(c) for c in self.clients.values()))
        titles = {v.title for v in self.shared()}
        for thread in THREADS:
            if not titles.intersection(thread.titles):
                await self._start(thread)
        await self.settled()

    async def settled(self, timeout_s: float = LIVE_TIMEOUT_S) -> bool:
        """Wait until every cast member's device knows every conversation they are in (a
        conversation one of them just started reaches the others within the sync latency)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            missing = [
                (name, view.id)
                for view in self.shared()
                for name, client in self.clients.items()
                if name in view.members and client.conversation(view.id) is None
            ]
            if not missing:
                return True
            await asyncio.sleep(0.05)
        return False

    def shared(self) -> list[ConversationView]:
        """The conversations the cast shares with you, each once (as one of them sees it)."""
        seen: dict[str, ConversationView] = {}
        for client in self.clients.values():
            for view in client.conversations():
                if self.me in view.members and view.id not in seen:
                    seen[view.id] = view
        return sorted(seen.values(), key=lambda v: v.id)

    async def step(self) -> str:
        """One thing happens; returns what: "message", "rename", "new" or "idle"."""
        self.steps += 1
        roll = self.rng.random()
        if roll < NEW_CHANCE and self.steps - self.last_new >= NEW_EVERY_STEPS:
            if await self._start_later():
                return "new"
        elif roll < NEW_CHANCE + RENAME_CHANCE and await self._rename():
            return "rename"
        return "message" if await self._message() else "idle"

    # --- what happens ----------------------------------------------------------------------------

    async def _start(self, thread: Thread) -> None:
        creator, *others = thread.people
        members = [*others, self.me]
        await self.clients[creator].create_conversation(thread.title, members)

    async def _start_later(self) -> bool:
        titles = {v.title for v in self.shared()}
        for thread in LATER:
            if not titles.intersection(thread.titles):
                await self._start(thread)
                self.last_new = self.steps
                return True
        return False

    async def _rename(self) -> bool:
        convs = [(v, t) for v in self.shared() if (t := thread_of(v.title)) is not None]
        if not convs:
            return False
        view, thread = self.rng.choice(convs)
        title = self.rng.choice([t for t in thread.titles if t != view.title])
        client = self._member(view, thread.people)
        if client is None:
            return False
        await client.rename_conversation(view.id, title)
        return True

    async def _message(self) -> bool:
        convs = self.shared()
        if not convs:
            return False
        view = self.rng.choice(convs)
        thread = thread_of(view.title)
        if thread is not None:
            line = self._next_line.get(view.id, view.message_count)
            self._next_line[view.id] = line + 1
            who, text = thread.lines[line % len(thread.lines)]
            client = self.clients.get(who)
        else:
            client, text = self._member(view, CAST), self.rng.choice(GENERIC)
        if client is None or client.conversation(view.id) is None:
            return False
        await client.send_message(view.id, text)
        return True

    def _member(self, view: ConversationView, people: tuple[str, ...]) -> Client | None:
        """A cast member in ``view`` (one of ``people``) whose device knows it."""
        names = [p for p in people if p in view.members and p in self.clients]
        self.rng.shuffle(names)
        for name in names:
            if self.clients[name].conversation(view.id) is not None:
                return self.clients[name]
        return None

    async def _run(self) -> None:
        for _ in range(100_000):  # bounded; one step every few seconds
            await asyncio.sleep(self.interval_s * self.rng.uniform(0.5, 1.5))
            try:
                log.info("step: %s", await self.step())
            except Exception:  # a refused step is the demo's problem, never the app's
                log.warning("demo step failed", exc_info=True)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        for client in self.clients.values():
            await client.close()


async def _live(client: Client, timeout_s: float = LIVE_TIMEOUT_S) -> bool:
    """Wait until ``client`` is live (its first full sync done); False after ``timeout_s``."""
    if client.status.state == "live":
        return True
    live = asyncio.Event()
    off = client.events.status_changed.connect(
        lambda status: live.set() if status.state == "live" else None
    )
    try:
        async with asyncio.timeout(timeout_s):
            await live.wait()
    except TimeoutError:
        log.info("demo: %s is not live yet", client.config.username)
        return False
    finally:
        off()
    return True
