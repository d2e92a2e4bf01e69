"""Choosing the store: ``--database``/``CONCORD_DATABASE_URL``, ``concord-server migrate``, the
``concord[scale]`` extra's message, and the service fixtures' skip-or-fail rule."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from server import cli
from server.storage import SQLiteStorage
from server.storage.factory import MissingExtra, describe, storage_for
from server.storage.postgres import PG_VERSION
from tests.support.services import POSTGRES_ENV, service_url


@pytest.fixture
def without_psycopg(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on an install without ``concord[scale]``: importing psycopg fails."""
    for name in [m for m in sys.modules if m.split(".")[0] in ("psycopg", "psycopg_pool")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.delitem(sys.modules, "server.storage.postgres", raising=False)
    monkeypatch.setitem(sys.modules, "psycopg", None)  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "psycopg_pool", None)  # type: ignore[arg-type]


def test_a_path_is_sqlite(tmp_path: Path) -> None:
    assert isinstance(storage_for(tmp_path / "x.db"), SQLiteStorage)
    assert describe("postgresql://u:secret@h/db") == "postgresql://u:***@h/db"


@pytest.mark.usefixtures("without_psycopg")
def test_postgres_without_the_extra_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(MissingExtra, match=r"concord\[scale\]"):
        storage_for("postgresql://concord@127.0.0.1:1/none")
    url = "postgresql://concord@127.0.0.1:1/none"
    assert cli.main(["migrate", "--database", url]) == 1
    assert "concord[scale]" in capsys.readouterr().err
    assert cli.main(["serve", "--data-dir", str(tmp_path), "--database", url]) == 1
    assert "concord[scale]" in capsys.readouterr().err
    # Every command that opens storage says it the same way (cli._on_storage).
    assert cli.main(["new-epoch", "--database", url]) == 1
    assert "concord[scale]" in capsys.readouterr().err
    add = ["add-user", "carol", "--password", "pw", "--database", url]
    assert cli.main([*add, "--data-dir", str(tmp_path)]) == 1
    assert "concord[scale]" in capsys.readouterr().err


def test_database_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONCORD_DATABASE_URL", "postgresql://h/db")
    args = cli.parser().parse_args(["serve"])
    assert args.database == "postgresql://h/db"
    assert cli.parser().parse_args(["migrate"]).database == "postgresql://h/db"


def test_migrate_creates_then_is_a_no_op(
    fresh_postgres: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import psycopg

    assert cli.main(["migrate", "--database", fresh_postgres]) == 0
    assert cli.main(["migrate", "--database", fresh_postgres]) == 0
    assert "***" in capsys.readouterr().out  # the password is not printed
    with psycopg.connect(fresh_postgres, autocommit=True) as conn:
        versions = conn.execute("SELECT version FROM concord_migrations").fetchall()
        assert sorted(v for (v,) in versions) == list(range(1, PG_VERSION + 1))  # each once
        conn.execute("INSERT INTO concord_migrations VALUES (999, 0)")
    assert cli.main(["migrate", "--database", fresh_postgres]) == cli.EXIT_SCHEMA_TOO_NEW
    assert "newer Concord server" in capsys.readouterr().err


def test_service_fixtures_skip_on_a_developer_box_and_fail_in_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(POSTGRES_ENV, raising=False)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=POSTGRES_ENV):
        service_url(POSTGRES_ENV, "psycopg")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=POSTGRES_ENV):
        service_url(POSTGRES_ENV, "psycopg")


def test_the_redis_service_answers(redis_url: str) -> None:
    """The Redis that .ci/services.sh starts (for the pokes between instances) is there."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        assert client.ping() is True
    finally:
        client.close()
