"""Pokes between instances over a real Redis (server/pokes.py, docs/architecture.md §6): one
channel per user, heard only by instances holding a stream of that user; bursts coalesce; a
Redis outage fails nothing and the subscriptions come back by themselves."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from server.pokes import NoPokes, pokes_for
from server.pokes_redis import RedisPokes
from tests.support.procs import free_port
from tests.support.services import private_redis, service_url
from tests.support.waiting import wait_until

EPOCH = 77


class Heard:
    """What one instance's hub was poked with."""

    def __init__(self) -> None:
        self.pokes: list[tuple[int, int]] = []

    def __call__(self, user_id: int, head: int) -> None:
        self.pokes.append((user_id, head))


@pytest.fixture
async def pair(redis_url: str) -> AsyncIterator[tuple[RedisPokes, RedisPokes, Heard]]:
    """Two instances' pokes on the suite's Redis, on a prefix of this test's own."""
    prefix = f"test:{secrets.token_hex(4)}:"
    listener, writer = RedisPokes(redis_url, prefix=prefix), RedisPokes(redis_url, prefix=prefix)
    heard = Heard()
    await listener.start(EPOCH, heard)
    await writer.start(EPOCH, Heard())
    try:
        yield listener, writer, heard
    finally:
        await listener.close()
        await writer.close()


async def subscribers(pokes: RedisPokes, user_id: int) -> int:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(pokes.url)
    try:
        [(_, count)] = await client.pubsub_numsub(pokes.channel(user_id))
        return int(count)
    finally:
        await client.aclose()


async def until_subscribed(pokes: RedisPokes, counts: dict[int, int]) -> None:
    """Until Redis counts these subscribers on the users' channels (a (un)subscribe is sent
    within a read slice of the listener's)."""

    async def settled() -> bool:
        return all([await subscribers(pokes, u) == n for u, n in counts.items()])

    await wait_until(settled, f"subscriptions {counts}")


async def test_a_poke_reaches_only_instances_watching_that_user(pair) -> None:
    listener, writer, heard = pair
    listener.watch(7)
    await wait_until(lambda: listener.watching == {7}, "watching")
    await until_subscribed(listener, {7: 1})
    writer.publish({7: 42, 8: 9})
    await wait_until(lambda: heard.pokes == [(7, 42)], "the poke for user 7")
    assert listener.received == 1 and writer.published == 2

    # A burst for one user is one poke with the last head (or a few, never out of order).
    writer.publish({7: 43})
    writer.publish({7: 44})
    await wait_until(lambda: heard.pokes[-1] == (7, 44), "the burst's last head")
    heads = [h for _, h in heard.pokes[1:]]
    assert heads == sorted(heads) and 1 <= len(heads) <= 2

    listener.unwatch(7)
    listener.watch(9)
    await until_subscribed(listener, {7: 0, 9: 1})
    writer.publish({7: 50, 9: 1})
    await wait_until(lambda: heard.pokes[-1] == (9, 1), "the poke for user 9")
    assert (7, 50) not in heard.pokes


async def test_another_epochs_pokes_and_junk_are_ignored(pair, redis_url: str) -> None:
    import redis.asyncio as aioredis

    listener, _, heard = pair
    listener.watch(3)
    await until_subscribed(listener, {3: 1})
    client = aioredis.Redis.from_url(redis_url)
    try:
        await client.publish(listener.channel(3), f"{EPOCH + 1}:99")
        await client.publish(listener.channel(3), b"\xff garbage")
        await client.publish(listener.channel(3), f"{EPOCH}:5")
    finally:
        await client.aclose()
    await wait_until(lambda: heard.pokes == [(3, 5)], "the one valid poke")
    assert listener.errors == 1  # the junk, counted


async def test_a_confirmed_subscription_is_reported(redis_url: str) -> None:
    """Once Redis confirms a channel, ``on_watching`` says so: the app then re-reads that
    user's head, so a write made before the subscription took effect is not left to the next
    heartbeat."""
    pokes = RedisPokes(redis_url, prefix=f"test:{secrets.token_hex(4)}:")
    confirmed: list[int] = []
    await pokes.start(EPOCH, Heard(), confirmed.append)
    try:
        pokes.watch(11)
        pokes.watch(12)
        await wait_until(lambda: sorted(confirmed) == [11, 12], "both confirmations")
        assert await subscribers(pokes, 11) == 1
    finally:
        await pokes.close()


def test_the_scale_extra_parses_replies_with_hiredis() -> None:
    """``concord[scale]`` brings hiredis, which redis-py then uses: its pure-Python parser was
    ~40 % of a receiving instance's loop in tests/bench/cross_instance.py."""
    from redis.utils import HIREDIS_AVAILABLE

    assert HIREDIS_AVAILABLE


def test_no_redis_means_no_pokes_and_a_bad_url_says_so() -> None:
    assert isinstance(pokes_for(None), NoPokes)
    assert isinstance(pokes_for(""), NoPokes)
    with pytest.raises(ValueError, match="redis://"):
        pokes_for("http://localhost:6379")


async def test_a_redis_outage_fails_nothing_and_subscriptions_come_back(
    redis_url: str, tmp_path: Path
) -> None:
    """Redis goes away under two instances and comes back on the same address: publishing
    never raises meanwhile (the pokes are dropped and counted), and the listener resubscribes
    by itself, so a poke after the return arrives."""
    service_url("CONCORD_TEST_REDIS_URL", "redis")  # redis-server is installed alongside
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    heard = Heard()
    listener, writer = RedisPokes(url, max_backoff_s=0.2), RedisPokes(url, max_backoff_s=0.2)
    with private_redis(port, tmp_path):
        await listener.start(EPOCH, heard)
        await writer.start(EPOCH, Heard())
        listener.watch(1)
        await until_subscribed(listener, {1: 1})
        writer.publish({1: 1})
        await wait_until(lambda: heard.pokes == [(1, 1)], "a poke before the outage")
    try:
        writer.publish({1: 2})  # Redis is down: dropped, counted, no exception
        await wait_until(lambda: writer.dropped >= 1, "the dropped poke", timeout=10)
        with private_redis(port, tmp_path):
            await wait_until(
                lambda: listener.errors >= 1, "the listener to notice the outage", timeout=10
            )

            async def resubscribed() -> bool:
                try:
                    return await subscribers(listener, 1) == 1
                except OSError:
                    return False

            for _ in range(200):  # bounded: the reader reconnects with backoff ≤ 0.2 s
                if await resubscribed():
                    break
                await wait_until(lambda: True, "a turn of the loop")
            writer.publish({1: 3})
            await wait_until(lambda: (1, 3) in heard.pokes, "a poke after the outage", timeout=10)
            assert (1, 2) not in heard.pokes
    finally:
        await listener.close()
        await writer.close()
