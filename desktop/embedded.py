"""The bundled sync server, used when no server is configured.

It listens on 127.0.0.1 only and keeps its data in the profile's data dir. Exactly one app
process of the profile serves it at a time: the leader of the profile's app bus
(:class:`EmbeddedHost`), so the kernel lock and fencing epoch that elect the leader also elect
the host, and when the host dies (even by SIGKILL) the next leader serves the same data again,
on the same port when it is free. The app never stores a token or a password for this account:
any process mints a fresh refresh token straight from the server's database when it needs one
(:func:`token_source`; same OS user, same data dir), so no secret crosses the bus either.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

from server.app import create_app
from server.auth import Tokens, hash_password, now_ms
from server.runner import ServerThread
from server.settings import Settings
from server.storage import SQLiteStorage, Storage, UserExists

from .instance import AppInstance
from .profile import read_json, write_json

log = logging.getLogger(__name__)


class EmbeddedServer:
    """The server app in a background thread, on ``preferred_port`` when that can be bound
    (the previous host's port, even with its old connections in TIME_WAIT), else on a free one.
    """

    def __init__(self, data_dir: Path, preferred_port: int = 0) -> None:
        self.data_dir = data_dir
        self.app = create_app(Settings(data_dir=data_dir))
        try:
            self.thread = ServerThread(self.app, "127.0.0.1", preferred_port)
        except OSError:  # taken (by whom does not matter: a port is not an identity)
            self.thread = ServerThread(self.app, "127.0.0.1", 0)

    @property
    def url(self) -> str:
        return self.thread.url

    @property
    def port(self) -> int:
        return int(self.thread.port)

    def start(self) -> EmbeddedServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.thread.stop()

    async def account_token(self, username: str) -> str:
        """The account's refresh token (created on first run), from the server's own loop."""
        loop = self.thread.server.loop
        assert loop is not None
        ctx = self.app.state.ctx
        fut = asyncio.run_coroutine_threadsafe(
            _account_token(ctx.storage, ctx.tokens, username), loop
        )
        return await asyncio.wrap_future(fut)

    async def add_user(self, username: str) -> str:
        """Another account (the demo's second device) with a fresh refresh token."""
        return await self.account_token(username)


async def _account_token(storage: Storage, tokens: Tokens, username: str) -> str:
    creds = await storage.user_credentials(username)
    if creds is None:  # first run: the account has a password nobody knows, and needs none
        digest = await asyncio.to_thread(hash_password, secrets.token_urlsafe(24))
        try:
            await storage.add_user(username, digest, now_ms())
        except UserExists:
            pass
        creds = await storage.user_credentials(username)
    assert creds is not None
    issued = await tokens.sign_in(creds[0], username)
    return issued.refresh


def mint_refresh_token(data_dir: Path, username: str) -> str:
    """A fresh refresh token for ``username`` written straight into the embedded server's
    database (the account is created on first use). Blocking: run it in a thread. Safe next
    to a server serving the same file in this or another process (SQLite WAL, busy timeout),
    and works while no process serves it (the token is valid once one does)."""
    settings = Settings(data_dir=data_dir)

    async def mint() -> str:
        storage = SQLiteStorage(
            settings.database_path, synchronous_full=settings.durable, readers=1
        )
        await storage.open()
        try:
            tokens = Tokens(storage, settings.access_ttl_s, settings.refresh_ttl_s)
            return await _account_token(storage, tokens, username)
        finally:
            await storage.close()

    # A private loop: never the process's default policy (qasync's, under the app).
    with asyncio.Runner(loop_factory=asyncio.SelectorEventLoop) as runner:
        return runner.run(mint())


def token_source(data_dir: Path, username: str) -> Callable[[], Awaitable[str]]:
    """``ClientConfig.refresh_token_source`` for the embedded profile."""

    async def source() -> str:
        return await asyncio.to_thread(mint_refresh_token, data_dir, username)

    return source


class EmbeddedHost:
    """Serves the embedded server from this process exactly while it leads the app bus.

    On becoming leader (at start, or on ``leader_changed`` when the old host died or quit) it
    starts the server on the profile's data dir, preferring the port in ``state_file``, records
    the port there and announces the URL to every process (:meth:`AppInstance.announce_server`).
    On losing leadership it stops serving at once (fencing: a host that lost the lock never keeps
    writing next to its successor); :meth:`close` stops it before the bus is left, so the next
    leader finds the port free.
    """

    RETRY_S = 1.0

    def __init__(self, instance: AppInstance, data_dir: Path, state_file: Path) -> None:
        self.instance = instance
        self.data_dir = data_dir
        self.state_file = state_file
        self.server: EmbeddedServer | None = None
        self._busy = asyncio.Lock()
        self._closed = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._off = instance.bus.leader_changed.connect(self._on_leader_changed)

    @property
    def url(self) -> str | None:
        return self.server.url if self.server is not None else None

    def _on_leader_changed(self, _epoch: int, _leader: object) -> None:
        self._spawn(self.follow_leadership())

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def follow_leadership(self) -> None:
        """Serve iff this process leads the app bus (and is not quitting)."""
        async with self._busy:
            for _ in range(10):  # re-check: leadership may move while a start or stop runs
                leading = self.instance.primary and not self._closed
                if leading == (self.server is not None):
                    return
                if not leading:
                    await self._stop()
                elif not await self._start():
                    loop = asyncio.get_running_loop()
                    loop.call_later(self.RETRY_S, self._spawn_follow)
                    return

    def _spawn_follow(self) -> None:
        if not self._closed:
            self._spawn(self.follow_leadership())

    async def _start(self) -> bool:
        port = read_json(self.state_file).get("port", 0)
        loop = asyncio.get_running_loop()

        def serve() -> EmbeddedServer:
            server = EmbeddedServer(self.data_dir, port if isinstance(port, int) else 0)
            server.thread.on_exit = lambda: self._thread_ended(loop, server)
            return server.start()

        try:
            server = await asyncio.to_thread(serve)
        except Exception:
            log.exception("could not serve the embedded server; retrying")
            return False
        self.server = server
        if not self.instance.primary:
            return True  # lost the lock while starting: the caller's loop stops it again
        epoch = self.instance.bus.epoch
        write_json(self.state_file, {"port": server.port})
        log.info("embedded server hosted at %s (bus epoch %d)", server.url, epoch)
        self.instance.announce_server(server.url, epoch)
        return True

    def _thread_ended(self, loop: asyncio.AbstractEventLoop, server: EmbeddedServer) -> None:
        """(Server thread.) Served no more: expected after a stop, else it is served again."""
        with contextlib.suppress(RuntimeError):  # the loop is gone: the app is quitting
            loop.call_soon_threadsafe(self._ended, server)

    def _ended(self, server: EmbeddedServer) -> None:
        if self.server is server and not self._closed:
            log.error("the embedded server stopped (%r); serving it again", server.thread.error)
            self.server = None
            self.instance.hosted_url = None
            self._spawn(self.follow_leadership())

    async def _stop(self) -> None:
        server, self.server = self.server, None
        self.instance.hosted_url = None  # stop answering "where is it?"
        if server is not None:
            await asyncio.to_thread(server.stop)
            log.info("embedded server stopped (this process no longer hosts it)")

    async def close(self) -> None:
        """Stop serving (quitting); the next leader of the bus serves it again."""
        self._closed = True
        self._off()
        await self.follow_leadership()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
