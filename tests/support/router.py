"""A TCP router in front of several server instances, as a load balancer would be: one URL for
the client; each new connection goes to the chosen instance, or, when that one refuses (stopped,
shutting down), to the next live one in order. Its own asyncio loop in a daemon thread; the
control methods are thread-safe and applied when they return."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections import Counter

_CHUNK = 65536


class Router:
    def __init__(self, backends: list[tuple[str, int]], host: str = "127.0.0.1") -> None:
        self.backends = list(backends)
        self.host = host
        self.port = 0
        self.chosen = 0
        self.routed: Counter[int] = Counter()  # connections per backend index
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-router", daemon=True)
        self._conns: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Router:
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError("router did not start")
        return self

    def choose(self, index: int) -> None:
        """New connections go to backend ``index`` first (or the next live one)."""

        def apply() -> None:
            self.chosen = index

        self._call(apply)

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for w in list(self._conns):
                w.close()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _call(self, fn: object) -> None:
        fut: concurrent.futures.Future[None] = concurrent.futures.Future()

        def run() -> None:
            try:
                fn()  # type: ignore[operator]
                fut.set_result(None)
            except BaseException as exc:  # pragma: no cover - surfaced to the caller
                fut.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        fut.result(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def serve() -> None:
            self._server = await asyncio.start_server(self._on_client, self.host, 0)
            self.port = self._server.sockets[0].getsockname()[1]
            self._ready.set()

        self._loop.run_until_complete(serve())
        self._loop.run_forever()

    async def _connect(self) -> tuple[int, asyncio.StreamReader, asyncio.StreamWriter] | None:
        n = len(self.backends)
        for step in range(n):
            index = (self.chosen + step) % n
            host, port = self.backends[index]
            try:
                reader, writer = await asyncio.open_connection(host, port)
            except OSError:
                continue
            return index, reader, writer
        return None

    async def _on_client(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        upstream = await self._connect()
        if upstream is None:
            cw.close()
            return
        index, ur, uw = upstream
        self.routed[index] += 1
        self._conns.update((cw, uw))

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(_CHUNK):
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                with contextlib.suppress(OSError):
                    dst.close()

        try:
            await asyncio.gather(pump(cr, uw), pump(ur, cw))
        finally:
            self._conns.difference_update((cw, uw))
