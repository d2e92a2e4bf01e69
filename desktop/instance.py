"""The app processes of one profile, on the profile's app bus (scope ``app-…``).

Its leader — whoever holds the bus's kernel lock, with a fencing epoch bumped at each election —
is the *primary*: a second ``concord`` launch asks it, over the bus, to open a window and exits;
for the embedded profile it also hosts the embedded server (:class:`desktop.embedded.
EmbeddedHost`). ``--separate-process`` joins as a full process of its own.

Messages on the ``concord.app`` channel (JSON; never a token):

* ``open-window {conversation?, startup?}`` → ``ack``: a launch asks the primary for a window,
  forwarding its startup notification (``startup``: ``{"x11": DESKTOP_STARTUP_ID}`` or
  ``{"wayland": XDG_ACTIVATION_TOKEN}``, see :mod:`desktop.startup`);
* ``presence {member, mains, active, last}`` and ``presence?``: what each process's windows
  are doing (:mod:`desktop.presence`), ``raise {to, window, startup?}`` → ``ack {ok}``: show and
  raise one window of another process; ``quit-all``: the tray's Quit;
* ``server-info?`` → ``server-info {url, epoch, serial}``: where the embedded server is served.
  The host also broadcasts it unasked whenever it starts serving; every process keeps the
  newest by (bus epoch of the host, the host's count of starts), so a late or replayed
  announcement of a dead host never wins.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.bus import BroadcastChannel, LocalBus, MessageEvent

log = logging.getLogger(__name__)
CHANNEL = "concord.app"


class AppInstance:
    def __init__(self, bus: LocalBus) -> None:
        self.bus = bus
        self.channel = BroadcastChannel(CHANNEL, bus=bus)
        self.channel.add_listener("message", self._on_message)
        # Called with (conversation id or None, startup notification) for ``open-window``.
        self.on_open_window: Callable[[str | None, dict[str, str]], None] | None = None
        # Called with every newer embedded-server URL (in this process too, when it hosts).
        self.on_server_url: Callable[[str], None] | None = None
        self.server_url: str | None = None  # the newest announced URL
        self.hosted_url: str | None = None  # set while this process serves it
        self.server_epoch = 0  # the bus epoch of the host that announced server_url
        self._server_serial = 0  # how many times that host had started it
        self._serial = 0  # how many times this process has announced
        self.learned = 0  # how many newer announcements this process has taken
        self._url_known = asyncio.Event()
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

    def post(self, message: dict[str, Any]) -> None:
        """Post on the app channel (dropped, and logged, while the bus closes)."""
        self._post(message)

    def _post(self, message: dict[str, Any]) -> None:
        try:
            self.channel.post_message(message)
        except Exception:  # closed during shutdown
            log.debug("app bus post dropped", exc_info=True)

    # --- the embedded server's whereabouts -------------------------------------------------------

    def announce_server(self, url: str, epoch: int) -> None:
        """This process now serves the embedded server at ``url`` (as leader of ``epoch``)."""
        self.hosted_url = url
        self._serial += 1
        self._post({"t": "server-info", "url": url, "epoch": epoch, "serial": self._serial})
        self._learn(url, epoch, self._serial)

    def _learn(self, url: str, epoch: int, serial: int) -> None:
        newest = (self.server_epoch, self._server_serial)
        if self.server_url is not None and (epoch, serial) <= newest:
            return  # an answer to someone's question, or an older host's word
        self.server_url, self.server_epoch, self._server_serial = url, epoch, serial
        self.learned += 1
        self._url_known.set()
        log.info("embedded server at %s (bus epoch %d)", url, epoch)
        if self.on_server_url is not None:
            self.on_server_url(url)

    async def wait_server_url(self, seconds: float) -> str | None:
        """The embedded server's URL: asks the host, and takes its announcement if it is still
        starting (or a new host's, if it dies meanwhile). None after ``seconds``."""
        if self.server_url is None:
            self._post({"t": "server-info?", "req": uuid.uuid4().hex})
            try:
                async with asyncio.timeout(seconds):
                    await self._url_known.wait()
            except TimeoutError:
                return None
        return self.server_url

    # --- messages --------------------------------------------------------------------------------

    def _on_message(self, event: MessageEvent) -> None:
        msg = event.data
        if not isinstance(msg, dict):
            return
        kind, req = msg.get("t"), str(msg.get("req", ""))
        if kind == "open-window" and self.primary and self.on_open_window is not None:
            conversation = msg.get("conversation")
            self.on_open_window(
                conversation if isinstance(conversation, str) else None,
                clean_startup(msg.get("startup")),
            )
            self._post({"t": "ack", "req": req})
        elif kind == "server-info?" and self.primary and self.hosted_url:
            info = {"url": self.hosted_url, "epoch": self.server_epoch, "serial": self._serial}
            self._post({"t": "server-info", "req": req, **info})
        elif kind == "server-info" and isinstance(msg.get("url"), str):
            epoch, serial = msg.get("epoch"), msg.get("serial")
            self._learn(
                msg["url"],
                epoch if isinstance(epoch, int) else 0,
                serial if isinstance(serial, int) else 0,
            )
        if kind in ("ack", "server-info") and req in self._waiting:
            fut = self._waiting.pop(req)
            if not fut.done():
                fut.set_result(msg)

    async def ask(self, message: dict[str, Any], seconds: float) -> dict[str, Any] | None:
        """Post ``message`` with a fresh ``req`` and wait for the ``ack`` that names it (None
        after ``seconds``)."""
        return await self._ask(message, seconds)

    async def _ask(self, message: dict[str, Any], seconds: float) -> dict[str, Any] | None:
        req = uuid.uuid4().hex
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[req] = fut
        self._post({**message, "req": req})
        try:
            return await asyncio.wait_for(fut, seconds)
        except TimeoutError:
            return None
        finally:
            self._waiting.pop(req, None)

    async def ask_primary_to_open_window(
        self, conversation: str | None = None, startup: dict[str, str] | None = None
    ) -> bool:
        """``startup``: this launch's startup notification, for the window that opens."""
        msg: dict[str, Any] = {"t": "open-window"}
        if conversation:
            msg["conversation"] = conversation
        if startup:
            msg["startup"] = startup
        return await self._ask(msg, 10.0) is not None


def clean_startup(value: Any) -> dict[str, str]:
    """A startup notification from the bus, keeping only the known keys with short strings."""
    if not isinstance(value, dict):
        return {}
    return {
        k: v
        for k, v in value.items()
        if k in ("x11", "wayland") and isinstance(v, str) and 0 < len(v) <= 512
    }
