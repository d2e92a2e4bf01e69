"""Fixtures for the sync server suite: a real uvicorn server on 127.0.0.1 in a thread, per-test
settings, accounts alice/bob/carol signed in (``Harness``, in ``tests.support.server_harness``).

Every server a test starts is stopped at teardown, and the test fails if the server logged an
error (an unhandled exception, a 500) other than one the test said it expects.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from server.app import create_app
from server.auth import hash_password
from server.runner import ServerThread
from server.settings import Settings
from tests.support.server_harness import (
    PASSWORD,
    USERNAMES,
    ErrorLog,
    Harness,
    MakeServer,
    add_accounts,
)


@pytest.fixture(scope="session")
def password_hash() -> str:
    return hash_password(PASSWORD)


@pytest.fixture
async def make_server(tmp_path: Path, password_hash: str) -> AsyncIterator[MakeServer]:
    """``await make_server(**settings_overrides)``: a started server with alice, bob and carol
    signed in (``login=False`` to skip signing in). ``database_url=fresh_postgres`` (from
    ``tests.support.services``) runs it on PostgreSQL instead of SQLite."""
    harnesses: list[Harness] = []
    errors = ErrorLog()

    async def make(*, login: bool = True, **overrides: Any) -> Harness:
        overrides.setdefault("durable", False)
        settings = Settings(data_dir=tmp_path / f"server{len(harnesses)}", **overrides)
        users = await add_accounts(settings.database, password_hash)
        thread = ServerThread(create_app(settings))
        errors.attach()
        h = Harness(thread, settings, users)
        harnesses.append(h)  # stopped at teardown even if it fails to start
        await asyncio.to_thread(thread.start)
        if login:
            await asyncio.gather(*(h.login(name) for name in USERNAMES))
        return h

    failures: list[BaseException] = []
    try:
        yield make
    finally:
        for h in harnesses:
            try:
                await h.aclose()
            except Exception as exc:
                failures.append(exc)
        errors.detach()
    if failures:
        raise failures[0]
    allowed = set().union(*(h.allowed_errors for h in harnesses))
    unexpected = [r for r in errors.records if r.getMessage().strip() not in allowed]
    assert not unexpected, "server logged errors:\n" + "\n".join(
        logging.Formatter().format(r) for r in unexpected
    )


@pytest.fixture
async def srv(make_server: MakeServer) -> Harness:
    """A server with default settings (except durable=False)."""
    return await make_server()
