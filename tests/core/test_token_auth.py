"""``TokenAuth`` signs the API's requests: a token first, one refresh and one resend on a 401, and
"sign-in required" only when the server refuses the refresh. The event stream only carries the
header (the engine answers its 401)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import httpx
import keyring
import keyring.backends.fail
import pytest

from core import protocol as p
from core.credentials import Credentials
from core.engine import SignInRequired
from core.http import ApiError, ServerApi, TokenAuth

SNAPSHOT = {"epoch": 1, "head": 0, "min_retained": 1, "conversations": [], "messages": {}}
Seen = list[tuple[str, str, str | None, str | None, bytes]]


@pytest.fixture(autouse=True)
def fail_keyring() -> object:
    before = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    yield
    keyring.set_keyring(before)


def server(refusals: list[str]) -> tuple[Seen, Callable[[httpx.Request], httpx.Response]]:
    """Answers a request whose path ends with the next of ``refusals`` with 401, others OK; the
    n-th refresh gives the access token ``A<n>``."""
    seen: Seen = []

    def handle(req: httpx.Request) -> httpx.Response:
        path = req.url.path.removeprefix(p.API_PREFIX)
        auth, key = req.headers.get("authorization"), req.headers.get("idempotency-key")
        seen.append((req.method, path, auth, key, req.content))
        if refusals and path.endswith(refusals[0]):
            refusals.pop(0)
            return httpx.Response(401, json={"error": {"code": "invalid_token", "message": "no"}})
        if path == "/auth/refresh":
            n = sum(s[1] == path for s in seen)
            return httpx.Response(200, json={"access_token": f"A{n}", "expires_at": n})
        if path == "/events":
            return httpx.Response(401, json={"error": {"code": "invalid_token", "message": "no"}})
        if req.method == "DELETE":
            return httpx.Response(200, json={"id": "c", "seq": 7})
        return httpx.Response(200, json=SNAPSHOT)

    return seen, handle


@pytest.fixture
async def make() -> AsyncIterator[Callable[..., tuple[Seen, ServerApi, TokenAuth]]]:
    apis: list[ServerApi] = []

    def make(*refusals: str, access: str | None = None) -> tuple[Seen, ServerApi, TokenAuth]:
        seen, handle = server(list(refusals))
        api = ServerApi("http://concord.test", transport=httpx.MockTransport(handle))
        apis.append(api)
        credentials = Credentials("token-auth-test")
        credentials.seed_refresh_token("R")
        tokens = TokenAuth(api, credentials, username="alice")
        tokens.access_token = access
        return seen, api, tokens

    yield make
    for api in apis:
        await api.aclose()


async def test_a_request_gets_a_token_first(make) -> None:
    seen, api, tokens = make()
    assert (await api.snapshot()).epoch == 1
    assert [(s[1], s[2]) for s in seen] == [("/auth/refresh", None), ("/snapshot", "Bearer A1")]
    assert tokens.signed_in and tokens.access_token == "A1"


async def test_a_401_is_refreshed_once_and_sent_again_unchanged(make) -> None:
    seen, api, _ = make("/conversations/c", access="OLD")
    assert (await api.delete_conversation("c", 3, op_id="op-1")).seq == 7
    assert [(s[0], s[1], s[2]) for s in seen] == [
        ("DELETE", "/conversations/c", "Bearer OLD"),
        ("POST", "/auth/refresh", None),
        ("DELETE", "/conversations/c", "Bearer A1"),
    ]
    assert seen[0][3] == seen[2][3] == "op-1"  # the same idempotency key
    assert json.loads(seen[1][4]) == {"refresh_token": "R"}


async def test_a_second_401_is_the_callers(make) -> None:
    seen, api, _ = make("/snapshot", "/snapshot", access="OLD")
    with pytest.raises(ApiError) as refused:
        await api.snapshot()
    assert refused.value.status == 401
    assert [s[1] for s in seen] == ["/snapshot", "/auth/refresh", "/snapshot"]


async def test_a_refused_refresh_signs_out(make) -> None:
    seen, api, tokens = make("/snapshot", "/auth/refresh")  # signed in by a first refresh
    told: list[None] = []
    tokens.sign_in_required.connect(lambda: told.append(None))
    with pytest.raises(SignInRequired):
        await api.snapshot()
    assert told == [None] and not tokens.signed_in and tokens.access_token is None
    with pytest.raises(SignInRequired):  # signed out: nothing is sent until the user signs in
        await api.snapshot()
    assert [s[1] for s in seen] == ["/auth/refresh", "/snapshot", "/auth/refresh"]
    assert len(told) == 2


async def test_the_stream_carries_the_header_and_is_not_retried(make) -> None:
    seen, api, _ = make(access="OLD")
    with pytest.raises(ApiError) as refused:
        async for _ in api.events():
            pass
    assert refused.value.status == 401
    assert [(s[1], s[2]) for s in seen] == [("/events", "Bearer OLD")]
