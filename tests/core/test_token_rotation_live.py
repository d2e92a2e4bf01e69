"""Refresh-token rotation against the real server: the leadership of a device moving between
processes that share one keyring, concurrent refreshes, a lost answer, and signing out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from core import protocol as p
from core.credentials import Credentials
from core.engine import SignInRequired
from core.http import ApiError, NetworkError, ServerApi, TokenAuth
from tests.core.test_token_rotation import ACCOUNT
from tests.support.keyrings import MemoryKeyring
from tests.support.live_server import PASSWORD, LiveServer, add_users


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    servers: list[LiveServer] = []

    def start(**settings: float) -> LiveServer:
        data = tmp_path / f"server{len(servers)}"
        data.mkdir()
        add_users(data)
        servers.append(LiveServer(data, heartbeat_s=1.0, **settings))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


class LosesOneAnswer(httpx.AsyncBaseTransport):
    """Sends everything to the server; the answer to the first ``auth/refresh`` never arrives."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.refreshes: list[bytes] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path.endswith("/auth/refresh"):
            self.refreshes.append(request.content)
            if len(self.refreshes) == 1:
                await response.aread()  # the server acted on it: the token is spent
                raise httpx.ReadError("connection reset before the answer")
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


Open = Callable[..., TokenAuth]


@pytest.fixture
async def open_session() -> AsyncIterator[Open]:
    apis: list[ServerApi] = []

    def open_session(
        url: str, credentials: Credentials, transport: httpx.AsyncBaseTransport | None = None
    ) -> TokenAuth:
        api = ServerApi(url, transport=transport)
        apis.append(api)
        return TokenAuth(api, credentials, username="alice")

    yield open_session
    for api in apis:
        await api.aclose()


async def test_leadership_moving_between_processes_presents_the_newest_token(
    ring: MemoryKeyring, start_server: Callable[..., LiveServer], open_session: Open
) -> None:
    server = start_server(refresh_grace_s=0.0)  # a spent token is never accepted again
    first = Credentials(ACCOUNT)  # process 1 of the device
    leading = open_session(server.url, first)
    await leading.sign_in(PASSWORD)
    signed_in_with = ring.token(ACCOUNT)
    # Process 2 leads for a while: it reads the keyring and rotates the token there.
    second = open_session(server.url, Credentials(ACCOUNT))
    await second.refresh_access()
    await second.refresh_access()
    assert ring.token(ACCOUNT) != signed_in_with
    # Process 1 leads again with a new engine (a new TokenAuth over the same credentials).
    again = open_session(server.url, first)
    await again.api.snapshot()  # refreshed with the keyring's token, not its stale copy
    assert again.signed_in and (await again.api.snapshot()).epoch >= 1
    await second.refresh_access()  # one session all along: nothing was taken for a reuse
    assert (await second.api.snapshot()).epoch >= 1


async def test_concurrent_refreshes_and_a_lost_answer_keep_the_session(
    ring: MemoryKeyring, start_server: Callable[..., LiveServer], open_session: Open
) -> None:
    server = start_server()  # the default grace window
    transport = LosesOneAnswer()
    tokens = open_session(server.url, Credentials(ACCOUNT), transport)
    await tokens.sign_in(PASSWORD)
    first = ring.token(ACCOUNT)
    with pytest.raises(NetworkError):
        await tokens.refresh_access()  # spent at the server, answer lost
    assert ring.token(ACCOUNT) == first
    await tokens.refresh_access()  # the same token again, within the grace window
    assert transport.refreshes[0] == transport.refreshes[1]
    assert ring.token(ACCOUNT) not in (None, first)
    tokens.access_token = None
    await asyncio.gather(*[tokens.refresh_access() for _ in range(4)], tokens.api.snapshot())
    assert len(transport.refreshes) == 3  # one more for all five callers
    # A different process (grace or not) finds the newest token valid: nothing was revoked.
    other = open_session(server.url, Credentials(ACCOUNT))
    assert (await other.api.snapshot()).epoch >= 1


async def test_sign_out_here_and_everywhere(
    ring: MemoryKeyring, start_server: Callable[..., LiveServer], open_session: Open
) -> None:
    server = start_server()
    sessions = []
    for name in ("laptop", "desktop", "phone"):
        tokens = open_session(server.url, Credentials(name))
        await tokens.sign_in(PASSWORD)
        sessions.append(tokens)
    laptop, desktop, phone = sessions
    kept = await laptop.credentials.refresh_token()
    assert kept
    assert await laptop.revoke() == p.LogoutResult(1)
    assert await laptop.credentials.refresh_token() == kept  # forgetting it is the caller's
    with pytest.raises(ApiError) as refused:
        await laptop.api.refresh(kept)  # ended at the server
    assert refused.value.status == 401
    with pytest.raises(SignInRequired):
        await laptop.api.snapshot()
    assert (await desktop.api.snapshot()).epoch >= 1  # the others go on

    assert await desktop.revoke(everywhere=True) == p.LogoutResult(2)
    phone.access_token = None  # its next request refreshes: refused, sign in again
    with pytest.raises(SignInRequired):
        await phone.api.snapshot()
    assert not phone.signed_in
