"""What a benchmark window cost Redis and PostgreSQL (``cross_instance.py``), and the
benchmark's own PostgreSQL database.

Redis: ``INFO commandstats`` deltas (``info`` itself excluded). PostgreSQL, for the benchmark's
own database: transactions and rows from ``pg_stat_database``, and statements from
``pg_stat_statements`` (``.ci/services.sh`` preloads it; creating the extension needs a
superuser, the test cluster's ``postgres`` with trust auth). Statements are split into queries
(``SELECT``, ``INSERT``, ``UPDATE``, ``DELETE``, ``CALL``…) and transaction control (``BEGIN``,
``COMMIT``, ``ROLLBACK``, ``SET TRANSACTION``), and only the server's role is counted, so these
reads never count themselves. Without the extension, statements are reported as missing, with
the reason, and the rest still counts.
"""

from __future__ import annotations

import asyncio
import sys
import time
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis

Snapshot = tuple[float, dict[str, int]]

# A PostgreSQL regular expression: \y is its word boundary (\b would be a backspace).
_TX_CONTROL = r"^\s*(BEGIN|COMMIT|END|ROLLBACK|START\s+TRANSACTION|SET\s+TRANSACTION)\y"
_STATEMENTS = f"""
SELECT coalesce(sum(calls) FILTER (WHERE query !~* '{_TX_CONTROL}'), 0),
       coalesce(sum(calls) FILTER (WHERE query ~* '{_TX_CONTROL}'), 0)
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = %s)
  AND userid = (SELECT oid FROM pg_roles WHERE rolname = %s)
"""


def superuser_url(url: str, user: str) -> str:
    """``url`` with ``user`` and no password, on the ``postgres`` database."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{user}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc, path="/postgres"))


class Counters:
    """Redis commands and PostgreSQL transactions, rows and statements, read before and after a
    window; ``db_url`` is the database (and role) the servers use."""

    def __init__(self, redis_url: str, admin_url: str, db_url: str, superuser: str) -> None:
        self.redis = redis.Redis.from_url(redis_url)
        self.dbname = urlsplit(db_url).path.lstrip("/")
        self.role = urlsplit(db_url).username or ""
        self.stats_url = admin_url
        self.statements_missing = ""  # why pg_stat_statements is not counted, if it is not
        su = superuser_url(admin_url, superuser)
        try:
            with psycopg.connect(su, autocommit=True, connect_timeout=5) as c:
                c.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                c.execute("SELECT count(*) FROM pg_stat_statements").fetchone()
            self.stats_url = su
        except psycopg.Error as e:
            self.statements_missing = str(e).strip().splitlines()[0]

    def redis_calls(self) -> dict[str, int]:
        stats = self.redis.info("commandstats")
        return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}

    def pg(self) -> dict[str, int]:
        with psycopg.connect(self.stats_url, autocommit=True) as c:
            row = c.execute(
                "SELECT xact_commit + xact_rollback, tup_inserted, tup_updated, tup_deleted, "
                "tup_fetched FROM pg_stat_database WHERE datname = %s",
                (self.dbname,),
            ).fetchone()
            assert row is not None
            names = ("xacts", "inserted", "updated", "deleted", "fetched")
            out = dict(zip(names, row, strict=True))
            if not self.statements_missing:
                q = c.execute(_STATEMENTS, (self.dbname, self.role)).fetchone()
                assert q is not None
                out |= {"queries": int(q[0]), "tx_control": int(q[1])}
        return out

    async def snapshot(self) -> Snapshot:
        """After a quiet 11 s (an idle backend flushes its statistics within 10 s, PG 15): the
        time, and Redis command counts with PostgreSQL's under ``pg:`` names."""
        await asyncio.sleep(11.0)
        redis_calls, pg = await asyncio.to_thread(lambda: (self.redis_calls(), self.pg()))
        return time.monotonic(), redis_calls | {f"pg:{k}": v for k, v in pg.items()}


def net(s0: Snapshot, s1: Snapshot, s2: Snapshot) -> dict[str, int]:
    """Counts over s1 → s2 less the idle rate of s0 → s1 (heartbeats, stream-cap refreshes)."""
    scale = (s2[0] - s1[0]) / (s1[0] - s0[0])
    idle, busy = delta(s0[1], s1[1]), delta(s1[1], s2[1])
    out = {k: round(v - idle.get(k, 0) * scale) for k, v in busy.items()}
    return {k: v for k, v in out.items() if v > 0}


def delta(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {k: v - a.get(k, 0) for k, v in b.items() if v - a.get(k, 0) and k != "info"}


def with_db(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


def drop_database(url: str, superuser: str, dbname: str) -> None:
    """Drop the benchmark's database; as the superuser where it can connect: FORCE must end an
    autovacuum worker busy on the fresh rows, which runs as the superuser."""
    error: Exception | None = None
    for attempt in (superuser, url):
        try:
            with psycopg.connect(attempt, autocommit=True, connect_timeout=5) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            return
        except psycopg.OperationalError as e:
            error = e  # no superuser here: the benchmark's own role
    print(f"could not drop the benchmark's database {dbname}: {error}", file=sys.stderr)
