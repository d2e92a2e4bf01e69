"""A deployment of several real ``concord-server serve`` processes on one PostgreSQL database
and one Redis (docs/architecture.md §6), with the accounts alice, bob and carol, and a
:class:`~tests.support.router.Router` for tests that need one URL in front of them."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

from tests.support.procs import PASSWORD, ServerProc
from tests.support.router import Router
from tests.support.server_cli import cli

USERS = ("alice", "bob", "carol")


class Cluster:
    def __init__(
        self,
        tmp: Path,
        database_url: str,
        redis_url: str | None,
        size: int = 3,
        heartbeat: float = 1.0,
    ) -> None:
        self.database_url = database_url
        extra = ("--database", database_url, "--no-fsync")
        if redis_url:  # keys and channels of this deployment's own on a shared Redis
            extra += ("--redis", redis_url, "--redis-prefix", f"test:{secrets.token_hex(4)}:")
        self.instances = [
            ServerProc(tmp / f"instance{i}", heartbeat=heartbeat, extra=extra) for i in range(size)
        ]
        self._router: Router | None = None

    async def start(self) -> Cluster:
        for name in USERS:
            done = await asyncio.to_thread(
                cli, "add-user", "--database", self.database_url, name, "--password", PASSWORD
            )
            assert done.returncode == 0, done.stderr
        await asyncio.gather(*(i.start() for i in self.instances))
        return self

    def url(self, index: int) -> str:
        return self.instances[index].url

    def router(self) -> Router:
        """One address in front of every instance (started on first use)."""
        if self._router is None:
            self._router = Router([("127.0.0.1", i.port) for i in self.instances]).start()
        return self._router

    async def stop(self) -> None:
        if self._router is not None:
            self._router.stop()
        await asyncio.gather(*(i.stop() for i in self.instances))
