"""The sign-in throttle: slots reserved before the password check, per name and per address,
bounded memory that never forgets an active counter, trusted proxies."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

import server.auth
from server.metrics import Metrics
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


async def test_memory_is_bounded_and_a_counter_near_its_limit_is_never_forgotten() -> None:
    clock = FakeClock()
    metrics = Metrics()
    t = MemoryThrottle(max_keys=100, window_s=60, clock=clock, metrics=metrics)
    for _ in range(3):
        await t.reserve([("name:victim", 3)])
    for i in range(99):  # an attacker sprays names to flush the victim's counter
        clock.now += 0.01
        await t.reserve([(f"name:spray-{i}", 3)])
    assert len(t) == 100
    # Full of active windows: a new name takes the place of the oldest single-attempt one
    # (forgetting it gives back one guess), never of the victim's, nor is it refused.
    await t.reserve([("name:new", 3)])
    assert len(t) == 100
    assert evictions(metrics) == {"active": 1.0}
    with pytest.raises(Throttled):  # the victim's counter is intact
        await t.reserve([("name:victim", 3)])
    await t.reserve([("name:spray-0", 3)])  # the evicted key starts afresh: one more guess
    assert evictions(metrics) == {"active": 2.0}  # ... for which spray-1 made room

    clock.now += 60  # windows passed: old entries make room, one at a time
    for i in range(500):  # a steady 85 names a minute fits in 100 slots for good
        clock.now += 0.7
        await t.reserve([(f"name:later-{i}", 3)])
        assert len(t) <= 100
    assert evictions(metrics) == {"active": 2.0, "passed": 500.0}
    assert sample(metrics, "concord_throttle_full_refusals_total") == 0


async def test_fails_closed_only_when_every_old_window_holds_several_attempts() -> None:
    clock = FakeClock()
    metrics = Metrics()
    t = MemoryThrottle(max_keys=4, window_s=60, clock=clock, scan=8, metrics=metrics)
    for key in ("a", "b", "c", "d"):
        for _ in range(2):  # two attempts each: forgetting one would give back two guesses
            await t.reserve([(key, 5)])
        clock.now += 1
    with pytest.raises(Throttled) as exc:
        await t.reserve([("new", 5)])
    assert exc.value.retry_after_s == pytest.approx(60 - 4)  # when "a" has passed
    assert len(t) == 4 and sample(metrics, "concord_throttle_full_refusals_total") == 1
    await t.reserve([("b", 5)])  # known keys are served as ever
    clock.now += 56  # "a" has passed: the first to go, though "c" and "d" are older than "b"
    await t.reserve([("new", 5)])
    assert set(t.keys()) == {"b", "c", "d", "new"}
    assert evictions(metrics) == {"passed": 1.0}


async def test_room_is_made_all_or_none_and_never_from_the_request_s_own_keys() -> None:
    clock = FakeClock()
    t = MemoryThrottle(max_keys=3, window_s=60, clock=clock)
    await t.reserve([("addr", 30), ("name:a", 5)])
    await t.reserve([("name:a", 5)])  # two attempts: not evictable
    await t.reserve([("addr", 30), ("name:b", 5)])  # addr holds two as well
    with pytest.raises(Throttled):  # two new keys need two victims: only name:b is one
        await t.reserve([("name:c", 5), ("addr:2", 30)])
    assert set(t.keys()) == {"addr", "name:a", "name:b"}  # nothing was evicted for nothing
    await t.reserve([("addr", 30), ("name:c", 5)])  # one new key: name:b makes room
    assert set(t.keys()) == {"addr", "name:a", "name:c"}


async def test_eviction_and_fail_closed_are_counted_in_metrics(make_server: MakeServer) -> None:
    h = await make_server(login=False, throttle_max_keys=3, login_failures_per_minute=5)

    async def sign_in(name: str) -> int:
        r = await h.client.post("/auth/token", json={"username": name, "password": "bad"})
        return r.status_code

    # addr + name:alice + name:bob fill the table; carol evicts alice's single attempt.
    assert [await sign_in(n) for n in ("alice", "bob", "carol")] == [401, 401, 401]
    assert [await sign_in(n) for n in ("bob", "carol")] == [401, 401]  # two attempts each now
    r = await h.client.post("/auth/token", json={"username": "dave", "password": "bad"})
    assert_error(r, 429, "too_many_attempts")
    assert 1 <= int(r.headers["retry-after"]) <= 60
    text = (await h.get(None, "/metrics")).text
    lines = text.splitlines()
    assert 'concord_throttle_evictions_total{window="active"} 1.0' in lines
    assert "concord_throttle_full_refusals_total 1.0" in lines


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def evictions(metrics: Metrics) -> dict[str, float]:
    found = {}
    for window in ("passed", "active"):
        if value := sample(metrics, "concord_throttle_evictions_total", window=window):
            found[window] = value
    return found


async def test_refund_gives_the_slot_back() -> None:
    t = MemoryThrottle(clock=FakeClock())
    r = await t.reserve([("k", 1)])
    await t.refund(r)
    await t.reserve([("k", 1)])
    with pytest.raises(Throttled):
        await t.reserve([("k", 1)])
