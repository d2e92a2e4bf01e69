"""PostgreSQL and Redis for the tests, from the URLs ``.ci/services.sh`` exports.

``postgres_url`` and ``redis_url`` skip a test, saying why, when the variable is unset or the
client library missing on a developer's box; under CI (``CI=true``) that is a failure instead, so
a run that lost its services cannot pass green. ``fresh_postgres`` gives each test an empty
database of its own (``CREATE DATABASE test_<random>``, dropped afterwards).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

POSTGRES_ENV = "CONCORD_TEST_POSTGRES_URL"
REDIS_ENV = "CONCORD_TEST_REDIS_URL"
_HOW = 'start them with: eval "$(.ci/services.sh start)"'


def _missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} (CI must run these tests: .ci/run starts the services)")
    pytest.skip(what)


def service_url(env: str, module: str) -> str:
    """The service's URL from ``env``; skips (fails under CI) without it or without ``module``."""
    url = os.environ.get(env, "")
    if not url:
        _missing(f"{env} is not set; {_HOW}")
    try:
        __import__(module)
    except ImportError as exc:
        _missing(f"{module} is not installed (pip install -e '.[dev]'): {exc}")
    return url


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The test server's ``postgresql://`` URL (a role that may create databases)."""
    return service_url(POSTGRES_ENV, "psycopg")


@pytest.fixture(scope="session")
def redis_url() -> str:
    return service_url(REDIS_ENV, "redis")


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@pytest.fixture
def fresh_postgres(postgres_url: str) -> Iterator[str]:
    """The URL of a new, empty database, dropped after the test."""
    import psycopg

    name = f"test_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(postgres_url, name)
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def private_redis(port: int, tmp: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A Redis of the test's own on ``port`` (stopped on exit): one a test may take down."""
    proc = subprocess.Popen(
        [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):  # bounded: until it accepts connections
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.1):
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(0.05)
            assert proc.poll() is None, "redis-server exited"
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)
