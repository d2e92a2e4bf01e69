"""The bundled sync server, started in a background thread when no server is configured.

It listens on 127.0.0.1 only, keeps its data in the profile's data dir, creates the local
account on first run, and mints the app's refresh token directly (the app owns this server),
so a first start needs no sign-in and no password is ever stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
from pathlib import Path

from server.app import create_app
from server.auth import hash_password, now_ms
from server.runner import ServerThread
from server.settings import Settings
from server.storage import UserExists


def _port_free(port: int) -> bool:
    if not port:
        return False
    with socket.socket() as s, contextlib.suppress(OSError):
        s.bind(("127.0.0.1", port))
        return True
    return False


class EmbeddedServer:
    def __init__(self, data_dir: Path, preferred_port: int = 0) -> None:
        self.data_dir = data_dir
        self.app = create_app(Settings(data_dir=data_dir))
        port = preferred_port if _port_free(preferred_port) else 0
        self.thread = ServerThread(self.app, "127.0.0.1", port)

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

    async def _account_token(self, username: str) -> str:
        ctx = self.app.state.ctx
        creds = await ctx.storage.user_credentials(username)
        if creds is None:
            try:
                await ctx.storage.add_user(
                    username, hash_password(secrets.token_urlsafe(24)), now_ms()
                )
            except UserExists:
                pass
            creds = await ctx.storage.user_credentials(username)
        assert creds is not None
        token, _ = await ctx.tokens.issue(creds[0], "refresh")
        return token

    async def account_token(self, username: str) -> str:
        """The local account's refresh token (created on first run), from the server's loop."""
        loop = self.thread.server.loop
        assert loop is not None
        fut = asyncio.run_coroutine_threadsafe(self._account_token(username), loop)
        return await asyncio.wrap_future(fut)

    async def add_user(self, username: str) -> str:
        """Another account (the demo's second device) with a fresh refresh token."""
        return await self.account_token(username)
