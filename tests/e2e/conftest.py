"""Fixtures of the end-to-end cluster tests (``test_cluster*.py``): ``make_cluster`` (several real
``concord-server serve`` processes on one PostgreSQL database and a Redis) and ``net``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.cluster_support import MakeCluster, Net
from tests.support.cluster import Cluster


@pytest.fixture
async def make_cluster(
    tmp_path: Path, fresh_postgres: str, redis_url: str
) -> AsyncIterator[MakeCluster]:
    """``await make_cluster(size=3, redis=<url or None>)``: started instances, stopped after."""
    started: list[Cluster] = []

    async def make(size: int = 3, redis: str | None = redis_url, heartbeat: float = 1.0) -> Cluster:
        cluster = Cluster(tmp_path / "cluster", fresh_postgres, redis, size, heartbeat)
        started.append(cluster)
        return await cluster.start()

    yield make
    for cluster in started:
        await cluster.stop()


@pytest.fixture
async def net() -> AsyncIterator[Net]:
    n = Net()
    yield n
    await n.aclose()
