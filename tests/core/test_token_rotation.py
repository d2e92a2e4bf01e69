"""Refresh-token rotation, request by request (a scripted server): every successor is kept in the
keyring before its access token is used, ``""`` keeps the old token, one refresh at a time, a
lost answer is retried with the same token, the keyring beats a stale copy in memory, and
``revoke`` signs out at the server. tests/core/test_token_rotation_live.py meets the real one."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx
import keyring
import keyring.backend
import keyring.backends.fail
import pytest

from core import protocol as p
from core.credentials import SERVICE, Credentials
from core.engine import SignInRequired
from core.http import NetworkError, ServerApi, TokenAuth
from tests.support.keyrings import MemoryKeyring
from tests.support.waiting import wait_until

ACCOUNT = "rotation-test"
SNAPSHOT = {"epoch": 1, "head": 0, "min_retained": 1, "conversations": [], "messages": {}}


@dataclass
class Server:
    """Rotates R<n> into R<n+1>; ``refresh`` may hold an answer, lose it, or answer ``""``."""

    ring: MemoryKeyring
    seen: list[tuple[str, str | None, dict[str, str]]] = field(default_factory=list)
    held: asyncio.Event | None = None  # refreshes wait for it
    lose: int = 0  # so many refresh answers are lost after the server acted on them
    rotate: bool = True
    keyring_at_use: list[str | None] = field(default_factory=list)

    async def handle(self, req: httpx.Request) -> httpx.Response:
        path = req.url.path.removeprefix(p.API_PREFIX)
        body = json.loads(req.content) if req.content else {}
        self.seen.append((path, req.headers.get("authorization"), body))
        if path == "/auth/refresh":
            if self.held is not None:
                await self.held.wait()
            spent = body["refresh_token"]
            successor = f"R{int(spent[1:]) + 1}"
            if self.lose:
                self.lose -= 1
                raise httpx.ReadError("connection reset after the request was sent")
            answer = {"access_token": f"A-{successor}", "expires_at": 1}
            if self.rotate:
                answer |= {"refresh_token": successor, "refresh_expires_at": 2}
            return httpx.Response(200, json=answer)
        if req.headers.get("authorization") == "Bearer OLD":
            return httpx.Response(401, json={"error": {"code": "invalid_token", "message": "no"}})
        if path in ("/auth/logout", "/auth/logout-all"):
            return httpx.Response(200, json={"sessions": 1 if path == "/auth/logout" else 3})
        self.keyring_at_use.append(self.ring.token(ACCOUNT))
        return httpx.Response(200, json=SNAPSHOT)

    def refreshes(self) -> list[str]:
        return [s[2]["refresh_token"] for s in self.seen if s[0] == "/auth/refresh"]


Make = Callable[..., tuple[Server, ServerApi, TokenAuth]]


@pytest.fixture
async def make(ring: MemoryKeyring) -> AsyncIterator[Make]:
    apis: list[ServerApi] = []

    def make(credentials: Credentials | None = None) -> tuple[Server, ServerApi, TokenAuth]:
        server = Server(ring)
        api = ServerApi("http://concord.test", transport=httpx.MockTransport(server.handle))
        apis.append(api)
        return server, api, TokenAuth(api, credentials or Credentials(ACCOUNT), username="al")

    ring.set_password(SERVICE, ACCOUNT, "R0")  # signed in before: the keyring holds R0
    yield make
    for api in apis:
        await api.aclose()


async def test_each_successor_is_in_the_keyring_before_its_access_token_is_used(
    make: Make, ring: MemoryKeyring
) -> None:
    server, api, tokens = make()
    await api.snapshot()
    tokens.access_token = None  # expired: the next request refreshes again
    await api.snapshot()
    assert server.refreshes() == ["R0", "R1"]  # each time the newest token
    assert server.keyring_at_use == ["R1", "R2"]
    assert [s[1] for s in server.seen if s[0] == "/snapshot"] == ["Bearer A-R1", "Bearer A-R2"]


async def test_an_older_server_that_does_not_rotate_keeps_the_old_token(
    make: Make, ring: MemoryKeyring
) -> None:
    server, _, tokens = make()
    server.rotate = False
    await tokens.refresh_access()
    await tokens.refresh_access()
    assert server.refreshes() == ["R0", "R0"] and ring.token(ACCOUNT) == "R0"
    assert tokens.access_token == "A-R1"


async def test_concurrent_refreshes_send_one_request_and_share_its_outcome(make: Make) -> None:
    server, api, tokens = make()
    server.held = asyncio.Event()
    tokens.access_token = "OLD"  # refused by the server
    # Callers that need a fresh token at once: direct ones, the stream's reauth, a REST call's 401.
    callers = [tokens.refresh_access() for _ in range(3)] + [tokens.reauth(), api.snapshot()]
    together = asyncio.gather(*callers)
    await wait_until(lambda: ("/snapshot", "Bearer OLD") in [s[:2] for s in server.seen], "a 401")
    server.held.set()
    await together
    assert server.refreshes() == ["R0"]
    assert tokens.access_token == "A-R1"
    assert [s[1] for s in server.seen if s[0] == "/snapshot"] == ["Bearer OLD", "Bearer A-R1"]

    server.held = asyncio.Event()  # a failure is shared too: nobody sends a second one
    server.lose = 1
    failing = asyncio.gather(*[tokens.refresh_access() for _ in range(3)], return_exceptions=True)
    await wait_until(lambda: len(server.refreshes()) == 2, "the second refresh")
    server.held.set()
    outcomes = await failing
    assert all(isinstance(o, NetworkError) for o in outcomes), outcomes
    assert server.refreshes() == ["R0", "R1"]


async def test_a_401_after_another_caller_refreshed_resends_without_refreshing(
    make: Make,
) -> None:
    server, _, tokens = make()
    await tokens.refresh_access()
    # A request signed with A-R0 is refused after another caller already moved on to A-R1.
    await tokens.refresh_access(stale="A-R0")
    assert server.refreshes() == ["R0"]
    await tokens.refresh_access(stale="A-R1")
    assert server.refreshes() == ["R0", "R1"]


async def test_a_lost_answer_is_retried_with_the_same_token(
    make: Make, ring: MemoryKeyring
) -> None:
    server, _, tokens = make()
    server.lose = 1
    with pytest.raises(NetworkError):
        await tokens.refresh_access()
    assert ring.token(ACCOUNT) == "R0"  # nothing was answered: the spent token stays
    await tokens.refresh_access()  # the server's grace window answers the same successor
    assert server.refreshes() == ["R0", "R0"]
    assert ring.token(ACCOUNT) == "R1" and tokens.access_token == "A-R1"


async def test_a_cancelled_caller_does_not_lose_the_successor(
    make: Make, ring: MemoryKeyring
) -> None:
    server, _, tokens = make()
    server.held = asyncio.Event()
    caller = asyncio.ensure_future(tokens.refresh_access())
    await wait_until(lambda: server.refreshes() == ["R0"], "the refresh to be sent")
    caller.cancel()
    server.held.set()
    await tokens.refresh_access()  # joins the refresh still in flight
    assert server.refreshes() == ["R0"] and ring.token(ACCOUNT) == "R1"


async def test_the_keyring_beats_a_stale_token_in_memory(ring: MemoryKeyring) -> None:
    """A process that led before holds the token it last saved; another process has led since
    and rotated it: the keyring's is the one to present."""
    earlier_leader = Credentials(ACCOUNT)
    await earlier_leader.save_refresh_token("R1")
    ring.set_password(SERVICE, ACCOUNT, "R5")  # rotated and saved by another process
    assert await earlier_leader.refresh_token() == "R5"
    keyring.set_keyring(keyring.backends.fail.Keyring())  # no keyring now: memory it is
    assert await earlier_leader.refresh_token() == "R5"
    await earlier_leader.save_refresh_token("R6")
    assert await earlier_leader.refresh_token() == "R6"
    keyring.set_keyring(ring)  # back, but it missed R6: memory is newer until a save lands
    assert await earlier_leader.refresh_token() == "R6"
    await earlier_leader.save_refresh_token("R7")
    ring.set_password(SERVICE, ACCOUNT, "R8")
    assert await earlier_leader.refresh_token() == "R8"
    ring.delete_password(SERVICE, ACCOUNT)  # signed out by another process
    assert await earlier_leader.refresh_token() is None


async def test_seeded_and_minted_tokens_rotate_in_memory(ring: MemoryKeyring) -> None:
    ring.set_password(SERVICE, ACCOUNT, "R0")
    seeded = Credentials(ACCOUNT)
    seeded.seed_refresh_token("S0")
    await seeded.save_refresh_token("S1")
    assert await seeded.refresh_token() == "S1" and ring.token(ACCOUNT) == "R0"

    async def mint() -> str:
        return "M0"

    minted = Credentials(ACCOUNT)
    minted.set_source(mint)
    assert await minted.refresh_token() == "M0"
    await minted.save_refresh_token("M1")
    assert await minted.refresh_token() == "M1" and ring.token(ACCOUNT) == "R0"


@pytest.mark.parametrize(
    ("everywhere", "path", "ended"), [(False, "/auth/logout", 1), (True, "/auth/logout-all", 3)]
)
async def test_revoke_signs_out_at_the_server_and_stops_refreshing(
    make: Make, ring: MemoryKeyring, everywhere: bool, path: str, ended: int
) -> None:
    server, api, tokens = make()
    await api.snapshot()
    result = await tokens.revoke(everywhere)
    assert result == p.LogoutResult(ended)
    assert server.seen[-1][:2] == (path, "Bearer A-R1")
    assert not tokens.signed_in and tokens.access_token is None
    with pytest.raises(SignInRequired):
        await tokens.refresh_access()
    with pytest.raises(SignInRequired):
        await api.snapshot()
    assert server.refreshes() == ["R0"]  # nothing more went out
    assert ring.token(ACCOUNT) == "R1"  # forgetting it is the caller's: credentials.forget()
