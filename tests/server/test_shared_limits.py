"""Limits for the deployment, not per instance (docs/architecture.md §4.7, §6): the sign-in
throttle (``RedisThrottle``) and the per-user stream cap (``RedisStreamCap``) shared through a
real Redis by several instances; a crashed instance's streams stop counting; with Redis away
both fall back to each instance's own limits and come back by themselves."""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from server.app import create_app
from server.errors import RequestRejected
from server.metrics import Metrics
from server.runner import ServerThread
from server.settings import Settings
from server.stream_cap import Lease
from server.stream_cap_redis import RedisStreamCap
from server.throttle import Throttled
from server.throttle_redis import RedisThrottle, redis_client
from tests.support.procs import free_port
from tests.support.server_harness import Harness, MakeServer, User, assert_error
from tests.support.services import private_redis, service_url
from tests.support.waiting import wait_until

Pair = tuple[Harness, Harness]


def plain_client(url: str) -> Any:
    """The test's own look at Redis, without the server's short timeouts (a loaded machine)."""
    import redis.asyncio as aioredis

    return aioredis.Redis.from_url(url)


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"test:{secrets.token_hex(4)}:"
    yield prefix
    client = plain_client(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def deployment(
    make_server: MakeServer, fresh_postgres: str, redis_url: str, prefix: str, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[Pair]]]:
    """``await deployment(**settings)``: two instances on one PostgreSQL database and Redis."""
    started: list[Harness] = []

    async def make(**overrides: Any) -> Pair:
        shared = {"database_url": fresh_postgres, "redis_url": redis_url, "redis_prefix": prefix}
        first = await make_server(login=False, **shared, **overrides)
        settings = Settings(data_dir=tmp_path / "second", durable=False, **shared, **overrides)
        users = {name: User(name, u.id) for name, u in first.users.items()}
        second = Harness(ServerThread(create_app(settings)), settings, users)
        started.append(second)
        await asyncio.to_thread(second.thread.start)
        return first, second

    try:
        yield make
    finally:
        for h in started:
            await h.aclose()


async def password_checks(*instances: Harness) -> float:
    """``concord_password_checks_total``, summed over the instances' ``/metrics``."""
    total = 0.0
    for h in instances:
        r = await h.get(None, "/metrics")  # loopback: no token needed, nobody signed in
        assert r.status_code == 200, r.text
        for family in text_string_to_metric_families(r.text):
            if family.name == "concord_password_checks":
                total += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return total


def assert_throttled(r: Any) -> None:
    assert_error(r, 429, "too_many_attempts")
    assert 1 <= int(r.headers["retry-after"]) <= 60


# --- through the app: two instances ------------------------------------------------------------


async def test_sign_in_limit_per_name_holds_across_instances(deployment) -> None:
    one, two = await deployment(login_failures_per_minute=10, login_attempts_per_address=1000)
    responses = await asyncio.gather(
        *(
            (one if i % 2 else two).client.post(
                "/auth/token", json={"username": "alice", "password": f"guess-{i}"}
            )
            for i in range(150)
        )
    )
    status = Counter(r.status_code for r in responses)
    checks = await password_checks(one, two)
    assert checks <= 10 and status[401] == checks and status[429] == 150 - checks, status
    for r in responses:
        if r.status_code == 429:
            assert_throttled(r)


async def test_sign_in_limit_per_address_holds_across_instances(deployment) -> None:
    one, two = await deployment(login_failures_per_minute=50, login_attempts_per_address=4)
    names = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"] * 2
    responses = await asyncio.gather(
        *(
            (one if i % 2 else two).client.post(
                "/auth/token", json={"username": name, "password": "x"}
            )
            for i, name in enumerate(names)
        )
    )
    assert sorted(r.status_code for r in responses) == [401] * 4 + [429] * 12
    assert await password_checks(one, two) == 4


async def test_a_success_on_one_instance_is_refunded_for_all(deployment) -> None:
    one, two = await deployment(login_failures_per_minute=2, login_attempts_per_address=1000)
    for h in (one, two, one, two):  # a user signing in on many devices is not a guesser
        await h.login("alice")
    r = await two.client.post("/auth/token", json={"username": "alice", "password": "bad"})
    assert_error(r, 401, "invalid_credentials")


async def test_stream_cap_holds_across_instances(deployment) -> None:
    one, two = await deployment(max_streams_per_user=3)
    for h in (one, two):
        await h.login("alice")
    streams = [await one.stream("alice"), await two.stream("alice"), await one.stream("alice")]
    for h in (one, two):
        assert_error(await h.refused_stream("alice"), 429, "too_many_streams")
    await streams[0].aclose()  # closing one (on either instance) frees a slot for both
    await wait_until(lambda: one.ctx.stream_cap.count(one.users["alice"].id) == 1, "the release")
    await two.stream("alice")
    assert_error(await one.refused_stream("alice"), 429, "too_many_streams")


# --- RedisThrottle ------------------------------------------------------------------------------


@pytest.fixture
async def throttles(redis_url: str, prefix: str) -> AsyncIterator[tuple[RedisThrottle, ...]]:
    """Two instances' throttles (each with a client of its own) on this test's prefix."""
    clients = [redis_client(redis_url), redis_client(redis_url)]
    try:
        yield tuple(RedisThrottle(c, prefix=prefix, metrics=Metrics()) for c in clients)
    finally:
        for c in clients:
            await c.aclose()


async def attempt(throttle: RedisThrottle, limits: list[tuple[str, int]]) -> float:
    """0.0 when a slot was taken, else the retry-after in seconds."""
    try:
        await throttle.reserve(limits)
    except Throttled as exc:
        return exc.retry_after_s
    return 0.0


async def test_reserve_is_atomic_across_instances(throttles) -> None:
    one, two = throttles
    waits = await asyncio.gather(
        *(attempt(one if i % 2 else two, [("name:alice", 10), ("addr:x", 100)]) for i in range(60))
    )
    assert waits.count(0.0) == 10
    assert all(0 < w <= 60 for w in waits if w)
    assert one.fallbacks == two.fallbacks == 0


async def test_all_or_nothing_across_keys_and_refunds(throttles) -> None:
    one, two = throttles
    assert await attempt(one, [("name:a", 1), ("addr:x", 2)]) == 0.0
    assert await attempt(two, [("name:b", 5), ("addr:x", 2)]) == 0.0
    # addr:x is full: name:c takes no slot either.
    assert await attempt(one, [("name:c", 1), ("addr:x", 2)]) > 0
    reservation = await two.reserve([("name:c", 1)])  # name:c is still free
    assert reservation.token
    assert await attempt(one, [("name:c", 1)]) > 0
    await one.refund(reservation)  # a refund on another instance gives it back
    assert await attempt(two, [("name:c", 1)]) == 0.0


async def test_known_pairs_are_shared(throttles) -> None:
    one, two = throttles
    assert not await two.known("pair:alice\x00198.51.100.7")
    await one.remember("pair:alice\x00198.51.100.7")
    assert await two.known("pair:alice\x00198.51.100.7")


async def test_without_redis_the_throttle_holds_per_instance() -> None:
    """Neither open nor closed: this instance's own windows decide while Redis is away."""
    metrics = Metrics()
    client = redis_client(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    throttle = RedisThrottle(client, metrics=metrics)
    try:
        waits = [await attempt(throttle, [("name:alice", 3)]) for _ in range(5)]
        assert waits[:3] == [0.0] * 3 and all(w > 0 for w in waits[3:])
        assert throttle.fallbacks == 5
        await throttle.remember("pair:x")
        assert await throttle.known("pair:x")
    finally:
        await client.aclose()
    text = metrics.render().decode()
    assert 'concord_shared_limits_fallbacks_total{limit="sign_in"} 5.0' in text


# --- RedisStreamCap -----------------------------------------------------------------------------


@pytest.fixture
async def caps(redis_url: str, prefix: str) -> AsyncIterator[Callable[..., RedisStreamCap]]:
    """``caps(limit, heartbeat_s=…)``: a started instance's cap; all closed afterwards."""
    made: list[RedisStreamCap] = []

    def make(
        limit: int, heartbeat_s: float = 15.0, url: str = redis_url, metrics: Metrics | None = None
    ) -> RedisStreamCap:
        cap = RedisStreamCap(
            redis_client(url),
            limit,
            heartbeat_s=heartbeat_s,
            prefix=prefix,
            retry_s=0.05,
            metrics=metrics,
        )
        made.append(cap)
        return cap

    try:
        yield make
    finally:
        for cap in made:
            await cap.close()
            await cap.client.aclose()


async def take(cap: RedisStreamCap, user_id: int) -> Lease | None:
    try:
        return await cap.acquire(user_id)
    except RequestRejected as exc:
        assert (exc.status, exc.code) == (429, "too_many_streams")
        return None


async def test_the_cap_counts_every_instance(caps) -> None:
    one, two = caps(3), caps(3)
    await one.start()
    await two.start()
    leases = await asyncio.gather(*(take(one if i % 2 else two, 7) for i in range(20)))
    held = [lease for lease in leases if lease is not None]
    assert len(held) == 3
    assert await take(one, 7) is None and await take(two, 7) is None
    assert await take(one, 8) is not None  # another user's cap is its own
    held[0].release()
    held[0].release()  # idempotent
    await wait_until(lambda: take(two, 7), "a slot freed by a release")
    assert await take(one, 7) is None


async def test_a_crashed_instance_stops_counting_within_three_heartbeats(
    caps, redis_url: str, prefix: str
) -> None:
    cap = caps(3, heartbeat_s=0.2)
    await cap.start()
    # What a crashed instance leaves: its count for user 5 and a deadline it no longer pushes.
    client = plain_client(redis_url)
    try:
        script = "local t = redis.call('TIME'); return t[1] * 1000 + math.floor(t[2] / 1000)"
        now_ms = int(await client.eval(script, 0))
        await client.zadd(cap.instances_key, {"crashed": now_ms + 600})
        await client.hset(cap.user_key(5), "crashed", 3)
        assert await take(cap, 5) is None  # its three streams count while it may be alive
        await wait_until(lambda: take(cap, 5), "the crashed instance's slots", timeout=5)
        assert await client.hget(cap.user_key(5), "crashed") is None  # dropped
    finally:
        await client.aclose()


async def test_a_live_instance_keeps_counting(caps) -> None:
    one, two = caps(2, heartbeat_s=0.3), caps(2, heartbeat_s=0.3)
    await one.start()
    await two.start()
    assert await take(one, 1) and await take(one, 1)
    await asyncio.sleep(1.5)  # five heartbeats: the deadline must have been pushed
    assert await take(two, 1) is None


async def test_redis_away_then_back_empty(caps, tmp_path: Path) -> None:
    """Redis goes away: opens are decided on the instance's own count (and counted); it comes
    back empty (no persistence): the instance writes its exact counts again by itself."""
    service_url("CONCORD_TEST_REDIS_URL", "redis")  # redis-server is installed alongside
    url = f"redis://127.0.0.1:{free_port()}/0"
    metrics = Metrics()
    one, two = caps(3, 0.5, url, metrics), caps(3, heartbeat_s=0.5, url=url)
    with private_redis(int(url.rsplit(":", 1)[1].split("/")[0]), tmp_path):
        await one.start()
        await two.start()
        first = await take(one, 1)
        assert first is not None and await take(one, 1) is not None
    first.release()  # Redis is down: released here, written back later
    assert await take(one, 1) is not None
    assert await take(one, 1) is not None
    assert await take(one, 1) is None  # the instance's own count still caps it
    assert one.fallbacks >= 2
    text = metrics.render().decode()
    assert 'concord_shared_limits_fallbacks_total{limit="streams"}' in text
    with private_redis(int(url.rsplit(":", 1)[1].split("/")[0]), tmp_path):
        client = plain_client(url)
        try:

            async def written_back() -> bool:
                try:
                    held = await client.hget(one.user_key(1), one.instance)
                except Exception:  # redis.exceptions.ConnectionError: not listening yet
                    return False
                return held == b"3"

            await wait_until(written_back, "the counts written back", timeout=10)
            assert await take(two, 1) is None  # one's three streams count again
        finally:
            await client.aclose()


async def test_an_instance_without_its_redis_keeps_its_own_limits(make_server: MakeServer) -> None:
    """Redis unreachable from the start: sign-ins are still limited (per instance), not refused
    wholesale, and the fallbacks are counted."""
    pytest.importorskip("redis")
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    h = await make_server(login=False, redis_url=dead, login_failures_per_minute=3)
    codes = [
        (
            await h.client.post("/auth/token", json={"username": "alice", "password": "x"})
        ).status_code
        for _ in range(5)
    ]
    assert codes == [401] * 3 + [429] * 2
    await h.login("bob")  # another name signs in
    r = await h.get(None, "/metrics")
    assert 'concord_shared_limits_fallbacks_total{limit="sign_in"} 6.0' in r.text


def test_serve_takes_a_redis_url_only() -> None:
    from server.cli import parser

    assert parser().parse_args(["serve", "--redis", "redis://h:6379/0"]).redis == "redis://h:6379/0"
    with pytest.raises(SystemExit) as exited:
        parser().parse_args(["serve", "--redis", "http://h:6379"])
    assert exited.value.code == 2
