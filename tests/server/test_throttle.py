"""The sign-in throttle: slots reserved before the password check, per name and per address,
bounded memory that never forgets an active counter, trusted proxies."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

import server.auth
from server.throttle import MemoryThrottle, Throttled
from tests.support.server_harness import PASSWORD, MakeServer, assert_error


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every password the server actually hashes (the server runs in this process)."""
    seen: list[str] = []
    real = server.auth.verify_password

    def counting(password: str, stored: str) -> bool:
        seen.append(password)
        return real(password, stored)

    monkeypatch.setattr(server.auth, "verify_password", counting)
    return seen


async def test_concurrent_sign_ins_check_at_most_the_limit(
    make_server: MakeServer, checks: list[str]
) -> None:
    h = await make_server(login=False, login_failures_per_minute=5, login_attempts_per_address=500)
    passwords = [f"guess-{i}" for i in range(149)] + [PASSWORD]
    responses = await asyncio.gather(
        *(
            h.client.post("/auth/token", json={"username": "alice", "password": pw})
            for pw in passwords
        )
    )
    status = Counter(r.status_code for r in responses)
    assert len(checks) <= 5, status
    assert status[429] >= 145 and status[401] + status[200] == len(checks), status
    for r in responses:
        if r.status_code == 429:
            assert_error(r, 429, "too_many_attempts")
            assert 1 <= int(r.headers["retry-after"]) <= 60
    metrics = (await h.get(None, "/metrics")).text
    assert f"concord_password_checks_total {float(len(checks))}" in metrics.splitlines()


async def test_per_address_limit_spans_names(make_server: MakeServer, checks: list[str]) -> None:
    h = await make_server(login=False, login_failures_per_minute=50, login_attempts_per_address=4)
    names = ["alice", "bob", "carol", "dave", "erin", "frank"]
    responses = await asyncio.gather(
        *(h.client.post("/auth/token", json={"username": n, "password": "x"}) for n in names)
    )
    assert sorted(r.status_code for r in responses) == [401] * 4 + [429] * 2
    assert len(checks) == 4


async def test_successful_sign_ins_are_not_counted(make_server: MakeServer) -> None:
    h = await make_server(login=False, login_failures_per_minute=2)
    for _ in range(5):  # a user signing in on many devices is not a guesser
        await h.login("alice")
    r = await h.client.post("/auth/token", json={"username": "alice", "password": "bad"})
    assert_error(r, 401, "invalid_credentials")


def forwarded(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": f"198.51.100.77, {address}"}


async def test_forwarded_for_is_believed_only_from_trusted_proxies(
    make_server: MakeServer,
) -> None:
    untrusted = await make_server(login=False, login_attempts_per_address=2)
    codes = []
    for i in range(3):  # a client cannot pick a new address per request
        r = await untrusted.client.post(
            "/auth/token",
            json={"username": "alice", "password": "bad"},
            headers=forwarded(f"203.0.113.{i}"),
        )
        codes.append(r.status_code)
    assert codes == [401, 401, 429]

    behind = await make_server(
        login=False, login_attempts_per_address=2, trusted_proxies=("127.0.0.0/8",)
    )

    async def attempt(address: str) -> int:
        r = await behind.client.post(
            "/auth/token",
            json={"username": "bob", "password": "bad"},
            headers=forwarded(address),
        )
        return r.status_code

    assert [await attempt("203.0.113.1") for _ in range(3)] == [401, 401, 429]
    # The nearest untrusted hop is the client: another one has its own budget.
    assert await attempt("203.0.113.2") == 401


async def test_a_stranger_cannot_lock_out_a_known_address(make_server: MakeServer) -> None:
    h = await make_server(login=False, login_failures_per_minute=3, trusted_proxies=("127.0.0.1",))
    home = forwarded("192.0.2.10")

    async def sign_in(password: str, headers: dict[str, str]) -> int:
        r = await h.client.post(
            "/auth/token", json={"username": "alice", "password": password}, headers=headers
        )
        return r.status_code

    assert await sign_in(PASSWORD, home) == 200  # alice has signed in from home before
    stranger = forwarded("203.0.113.66")
    assert [await sign_in("guess", stranger) for _ in range(4)] == [401, 401, 401, 429]
    assert await sign_in(PASSWORD, forwarded("203.0.113.67")) == 429  # a new place waits
    assert await sign_in(PASSWORD, home) == 200  # home is not locked out by the stranger


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_window_slides_and_retry_after_is_exact() -> None:
    clock = FakeClock()
    t = MemoryThrottle(window_s=60, clock=clock)
    await t.reserve([("k", 2)])
    clock.now += 10
    await t.reserve([("k", 2)])
    clock.now += 10
    with pytest.raises(Throttled) as exc:
        await t.reserve([("k", 2)])
    assert exc.value.retry_after_s == pytest.approx(40)
    clock.now += 40
    await t.reserve([("k", 2)])  # the first slot has left the window


async def test_all_or_nothing_across_keys() -> None:
    t = MemoryThrottle(clock=FakeClock())
    await t.reserve([("addr", 1)])
    with pytest.raises(Throttled):
        await t.reserve([("name", 5), ("addr", 1)])
    assert len(t) == 1  # the refused request took no slot under "name"


async def test_memory_is_bounded_and_active_counters_are_never_forgotten() -> None:
    clock = FakeClock()
    t = MemoryThrottle(max_keys=100, window_s=60, clock=clock)
    for _ in range(3):
        await t.reserve([("name:victim", 3)])
    for i in range(99):  # an attacker sprays names to flush the victim's counter
        clock.now += 0.01
        await t.reserve([(f"name:spray-{i}", 3)])
    assert len(t) == 100
    with pytest.raises(Throttled) as exc:  # full of active windows: a new name waits
        await t.reserve([("name:new", 3)])
    assert 0 < exc.value.retry_after_s <= 60
    with pytest.raises(Throttled):  # and the victim's counter is intact
        await t.reserve([("name:victim", 3)])
    assert len(t) == 100

    clock.now += 60  # windows passed: old entries make room, one at a time
    for i in range(500):  # a steady 85 names a minute fits in 100 slots for good
        clock.now += 0.7
        await t.reserve([(f"name:later-{i}", 3)])
        assert len(t) <= 100


async def test_refund_gives_the_slot_back() -> None:
    t = MemoryThrottle(clock=FakeClock())
    r = await t.reserve([("k", 1)])
    await t.refund(r)
    await t.reserve([("k", 1)])
    with pytest.raises(Throttled):
        await t.reserve([("k", 1)])
