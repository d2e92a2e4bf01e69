"""Run the app under uvicorn: from the CLI (signals), or in a background thread (the desktop
app's embedded server, and the tests). Either way shutdown first sends ``bye`` on every stream."""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn
from starlette.applications import Starlette

from .http_protocol import protocol_class
from .limits import HttpLimits


class ConcordServer(uvicorn.Server):
    """A uvicorn server whose exit first tells open streams ``bye``, with ``limits`` enforced
    by its HTTP protocol (:mod:`server.http_protocol`)."""

    def __init__(self, app: Starlette, limits: HttpLimits | None = None, **config: Any) -> None:
        limits = limits or HttpLimits()
        self.limits = limits
        metrics = getattr(getattr(app.state, "ctx", None), "metrics", None)
        config.setdefault("http", protocol_class(limits, metrics))
        config.setdefault("ws", "none")
        config.setdefault("timeout_keep_alive", limits.keepalive_timeout_s)
        config.setdefault("timeout_graceful_shutdown", 5)
        config.setdefault("log_level", "warning")
        config.setdefault("lifespan", "on")
        # The app reads X-Forwarded-For itself, from --trusted-proxy peers only: uvicorn's own
        # rewrite (on for 127.0.0.1 by default) would let any local process pick its address.
        config.setdefault("proxy_headers", False)
        super().__init__(uvicorn.Config(app, **config))
        self.app = app
        self.loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().serve(sockets=sockets)

    def _say_bye(self) -> None:
        ctx = getattr(self.app.state, "ctx", None)
        if ctx is not None:
            ctx.hub.begin_shutdown()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Not uvicorn's own, which records the signal and re-raises it after the graceful
        # shutdown: the process would then end with status 143 instead of 0.
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._say_bye)
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True  # a second Ctrl+C: stop waiting for connections
        else:
            self.should_exit = True

    def request_exit(self) -> None:
        """Thread-safe graceful stop."""
        if self.loop is None:
            self.should_exit = True
            return

        def stop() -> None:
            self._say_bye()
            self.should_exit = True

        self.loop.call_soon_threadsafe(stop)


class ServerThread:
    """The app served on ``host`` (an ephemeral port by default) in a daemon thread."""

    def __init__(
        self,
        app: Starlette,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: HttpLimits | None = None,
    ) -> None:
        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            # SO_REUSEADDR: a restarted server may take back its port while connections of
            # the previous one linger in TIME_WAIT (never while another socket listens on it).
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock.bind((host, port))
        except OSError:
            self.sock.close()
            raise
        self.host, self.port = self.sock.getsockname()[:2]
        self.server = ConcordServer(app, limits, host=host, port=self.port)
        self._thread = threading.Thread(target=self._run, name="concord-server", daemon=True)
        self.error: BaseException | None = None
        # Called from the server's thread when it ends, whatever the reason (a stop included).
        self.on_exit: Callable[[], None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        try:
            # Never the process's default loop policy: under the desktop app that is qasync's,
            # whose loops belong to the Qt main thread.
            factory = self.server.config.get_loop_factory() or asyncio.SelectorEventLoop
            with asyncio.Runner(loop_factory=factory) as runner:
                runner.run(self.server.serve(sockets=[self.sock]))
        except BaseException as exc:  # surfaced by start()/stop()
            self.error = exc
        finally:
            if self.on_exit is not None:
                self.on_exit()

    def start(self, timeout: float = 15.0) -> ServerThread:
        self._thread.start()
        deadline = threading.Event()
        for _ in range(int(timeout / 0.01)):
            if self.server.started or self.error or not self._thread.is_alive():
                break
            deadline.wait(0.01)
        if not self.server.started:
            self.stop(5.0)
            raise RuntimeError(f"server did not start: {self.error!r}")
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Graceful (``bye`` on every stream); idempotent; also after a failed or no start."""
        if not self._thread.is_alive():
            self.sock.close()
            return
        self.server.request_exit()
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.server.force_exit = True
            self._thread.join(5)
        self.sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
