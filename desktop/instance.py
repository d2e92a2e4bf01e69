"""One primary app process per profile. A second ``concord`` launch asks it, over the local bus,
to open a window and exits; ``--separate-process`` joins as a full process of its own and learns
the (embedded) server's URL from the primary."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.bus import BroadcastChannel, LocalBus, MessageEvent

CHANNEL = "concord.app"


class AppInstance:
    def __init__(self, bus: LocalBus) -> None:
        self.bus = bus
        self.channel = BroadcastChannel(CHANNEL, bus=bus)
        self.channel.add_listener("message", self._on_message)
        self.on_open_window: Callable[[str | None], None] | None = None
        self.server_url: str | None = None
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}

    @classmethod
    async def open(cls, profile_key: str, runtime_dir: Path | None = None) -> AppInstance:
        scope = "app-" + hashlib.sha256(profile_key.encode()).hexdigest()[:20]
        return cls(await LocalBus.open(scope=scope, runtime_dir=runtime_dir))

    @property
    def primary(self) -> bool:
        return self.bus.is_leader

    async def close(self) -> None:
        self.channel.close()
        await self.bus.close()

    def _on_message(self, event: MessageEvent) -> None:
        msg = event.data
        if not isinstance(msg, dict):
            return
        kind, req = msg.get("t"), str(msg.get("req", ""))
        if kind == "open-window" and self.primary and self.on_open_window is not None:
            conversation = msg.get("conversation")
            self.on_open_window(conversation if isinstance(conversation, str) else None)
            self.channel.post_message({"t": "ack", "req": req})
        elif kind == "server-info?" and self.primary and self.server_url:
            self.channel.post_message({"t": "server-info", "req": req, "url": self.server_url})
        elif kind in ("ack", "server-info") and req in self._waiting:
            fut = self._waiting.pop(req)
            if not fut.done():
                fut.set_result(msg)

    async def _ask(self, message: dict[str, Any], seconds: float) -> dict[str, Any] | None:
        req = uuid.uuid4().hex
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[req] = fut
        self.channel.post_message({**message, "req": req})
        try:
            return await asyncio.wait_for(fut, seconds)
        except TimeoutError:
            return None
        finally:
            self._waiting.pop(req, None)

    async def ask_primary_to_open_window(self, conversation: str | None = None) -> bool:
        msg: dict[str, Any] = {"t": "open-window"}
        if conversation:
            msg["conversation"] = conversation
        return await self._ask(msg, 10.0) is not None

    async def ask_server_url(self) -> str | None:
        answer = await self._ask({"t": "server-info?"}, 10.0)
        return str(answer["url"]) if answer else None
