"""``concord-server``: serve, add users, migrate the database, print the version.

Exit status: 0 done, 1 failed (for instance the user exists), 2 bad arguments, 3 the database
was written by a newer Concord server (it is left untouched).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import importlib.util
import logging
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from . import __version__

log = logging.getLogger(__name__)

# The server's modules are imported by the commands that use them, so that ``--version`` and
# ``--help`` answer at once (a budget the installers' smoke test checks).

EXIT_SCHEMA_TOO_NEW = 3


def _on_storage(run: Coroutine[Any, Any, int]) -> int:
    """Run a command's storage work on its own loop. A database written by a newer server, or a
    ``postgresql://`` URL without the ``concord[scale]`` extra, is said on stderr and becomes
    the exit status (3, 1), the same for every command."""
    from .storage import DatabaseTooNew
    from .storage.factory import MissingExtra

    try:
        return asyncio.run(run)
    except DatabaseTooNew as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SCHEMA_TOO_NEW
    except MissingExtra as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _data_dir(value: str | None) -> Path:
    from .settings import default_data_dir

    path = Path(value).expanduser() if value else default_data_dir()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _serve(args: argparse.Namespace) -> int:
    from . import gc_policy
    from .admin import ServeLock
    from .app import create_app
    from .limits import from_arguments, raise_open_files_limit
    from .runner import ConcordServer
    from .settings import Settings

    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        limits = from_arguments(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if bool(args.tls_cert) != bool(args.tls_key):
        print("error: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    raise_open_files_limit(limits.max_connections)
    try:
        origins = args.cors_origin or origins_from_env()
    except argparse.ArgumentTypeError as exc:
        print(f"error: CONCORD_CORS_ORIGINS: {exc}", file=sys.stderr)
        return 2
    settings = Settings(
        data_dir=_data_dir(args.data_dir),
        access_ttl_s=args.access_ttl,
        heartbeat_s=args.heartbeat,
        retention=args.retention,
        durable=args.fsync,
        trusted_proxies=tuple(args.trusted_proxy),
        metrics_token=args.metrics_token or None,
        cors_origins=tuple(origins),
        database_url=args.database or "",
        redis_url=args.redis or None,
        redis_prefix=args.redis_prefix,
    )
    if settings.redis_url and importlib.util.find_spec("redis") is None:
        print(
            "error: --redis needs the redis package: pip install 'concord[scale]'", file=sys.stderr
        )
        return 1
    lock = ServeLock(settings.data_dir)  # held while serving: `restore` waits for a stop
    if not lock.acquire():
        print(f"error: a server is already serving {settings.data_dir}", file=sys.stderr)
        return 1
    # Migrate, or refuse a newer server's database, before anything listens.
    failed = _on_storage(_open_database(settings.database))
    if failed:
        return failed
    server = ConcordServer(
        create_app(settings),
        limits,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        ssl_certfile=args.tls_cert,
        ssl_keyfile=args.tls_key,
    )
    log.info(
        "Concord server %s on %s://%s:%d (data in %s)",
        __version__,
        "https" if args.tls_cert else "http",
        args.host,
        args.port,
        settings.data_dir,
    )
    gc_policy.tune_for_streams()  # full collections would pause every stream (gc_policy)
    server.run()
    return 0


async def _open_database(database: str | Path) -> int:
    """Create or migrate the schema (raises DatabaseTooNew, MissingExtra); 0."""
    from .storage.factory import storage_for

    storage = storage_for(database)
    try:
        await storage.open()
    finally:
        await storage.close()
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from .storage.factory import describe

    database = args.database or _data_dir(args.data_dir) / "concord.db"
    failed = _on_storage(_open_database(database))
    if not failed:
        print(f"database {describe(database)} is up to date")
    return failed


def _new_epoch(args: argparse.Namespace) -> int:
    """After restoring a PostgreSQL dump (``pg_restore``), with every instance stopped: a new
    ``meta.epoch``, so every client's cursor gets ``epoch_changed`` and it does a full sync."""
    from .storage.factory import describe, is_postgres, storage_for

    if not args.database or not is_postgres(args.database):
        print(
            "error: new-epoch wants --database postgresql://… (SQLite: use restore)",
            file=sys.stderr,
        )
        return 2

    async def run() -> int:
        storage = storage_for(args.database)  # without concord[scale]: MissingExtra, said
        from .storage.postgres import PostgresStorage  # importable once storage_for was

        assert isinstance(storage, PostgresStorage)
        try:
            await storage.open()
            epoch = await storage.new_epoch()
        finally:
            await storage.close()
        print(
            f"database {describe(args.database)} is now epoch {epoch}: clients will do a full sync"
        )
        return 0

    return _on_storage(run())


def _database_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--database",
        default=os.environ.get("CONCORD_DATABASE_URL"),
        metavar="URL",
        help="postgresql://user:password@host/db to share one database between instances "
        "(needs concord[scale]; env CONCORD_DATABASE_URL; default: SQLite in the data dir)",
    )


def _read_password(args: argparse.Namespace) -> str:
    password: str | None = args.password
    if password is not None:
        return password
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Repeat: ") != first:
            raise SystemExit("passwords do not match")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _add_user(args: argparse.Namespace) -> int:
    import re

    from core import protocol as p

    from .auth import hash_password, now_ms
    from .storage import UserExists
    from .storage.factory import storage_for

    if not re.fullmatch(p.USERNAME_PATTERN.strip("^$"), args.name):
        print("error: a username is 1-64 characters of A-Z a-z 0-9 _ . -", file=sys.stderr)
        return 2
    password = _read_password(args)
    if not password:
        print("error: the password must not be empty", file=sys.stderr)
        return 2

    async def run() -> int:
        storage = storage_for(args.database or _data_dir(args.data_dir) / "concord.db")
        try:
            await storage.open()
            await storage.add_user(args.name, hash_password(password), now_ms())
        except UserExists as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        finally:
            await storage.close()
        print(f"added user {args.name}")
        return 0

    return _on_storage(run())


def _network(value: str) -> str:
    import ipaddress

    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an address or network: {value!r}") from None
    return value


def _redis_url(value: str) -> str:
    if not value.startswith(("redis://", "rediss://", "unix://")):
        raise argparse.ArgumentTypeError(f"not a redis://, rediss:// or unix:// URL: {value!r}")
    return value


def parse_origin(value: str) -> str:
    """A web origin as browsers send it: ``scheme://host[:port]``, nothing after."""
    from urllib.parse import urlsplit

    value = value.strip().rstrip("/")
    try:
        parts = urlsplit(value)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        ok = ok and not (parts.path or parts.query or parts.fragment or parts.username)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        ok = False
    if not ok:
        raise argparse.ArgumentTypeError(f"not an origin (scheme://host[:port]): {value!r}")
    return value


def origins_from_env() -> list[str]:
    raw = os.environ.get("CONCORD_CORS_ORIGINS", "")
    return [parse_origin(v) for v in raw.replace(",", " ").split()]


def parser() -> argparse.ArgumentParser:
    from .admin_cli import add_commands as add_admin_commands
    from .limits import add_arguments as add_limit_arguments

    ap = argparse.ArgumentParser(prog="concord-server", description="The Concord sync server.")
    ap.add_argument("--version", action="version", version=f"concord-server {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--host", default=os.environ.get("CONCORD_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("CONCORD_PORT", "8765")))
    serve.add_argument("--data-dir", default=os.environ.get("CONCORD_DATA_DIR"))
    serve.add_argument("--access-ttl", type=float, default=15 * 60, help="seconds (default 900)")
    serve.add_argument("--heartbeat", type=float, default=15.0, help="seconds (default 15)")
    serve.add_argument("--retention", type=int, default=10_000, help="changes kept per user")
    serve.add_argument(
        "--no-fsync",
        dest="fsync",
        action="store_false",
        help="commit without fsync (survives a server crash, not a power cut)",
    )
    serve.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        type=_network,
        metavar="ADDR[/BITS]",
        help="a reverse proxy whose X-Forwarded-For names the client (repeatable)",
    )
    serve.add_argument(
        "--metrics-token",
        default=os.environ.get("CONCORD_METRICS_TOKEN"),
        help="bearer token for /metrics (env CONCORD_METRICS_TOKEN; unset: loopback only)",
    )
    serve.add_argument(
        "--cors-origin",
        action="append",
        type=parse_origin,
        metavar="ORIGIN",
        help="a web page origin allowed to use the API, e.g. https://chat.example.com "
        "(repeatable; env CONCORD_CORS_ORIGINS, space-separated; default: none)",
    )
    serve.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    serve.add_argument(
        "--tls-cert",
        default=os.environ.get("CONCORD_TLS_CERT"),
        metavar="PEM",
        help="serve HTTPS with this certificate chain (env CONCORD_TLS_CERT; with --tls-key)",
    )
    serve.add_argument(
        "--tls-key",
        default=os.environ.get("CONCORD_TLS_KEY"),
        metavar="PEM",
        help="the certificate's private key (env CONCORD_TLS_KEY)",
    )
    add_limit_arguments(serve)
    _database_argument(serve)
    serve.add_argument(
        "--redis",
        default=os.environ.get("CONCORD_REDIS_URL") or None,
        type=_redis_url,
        metavar="URL",
        help="redis://host:port/db shared by every instance: pokes between them, and the "
        "sign-in throttle and stream cap for the whole deployment (needs concord[scale]; "
        "env CONCORD_REDIS_URL; default: one instance, nothing shared)",
    )
    serve.add_argument(
        "--redis-prefix",
        default=os.environ.get("CONCORD_REDIS_PREFIX") or "concord:",
        metavar="PREFIX",
        help="of every Redis key and channel, for deployments sharing one Redis "
        "(env CONCORD_REDIS_PREFIX; default concord:)",
    )
    serve.set_defaults(func=_serve)
    add = sub.add_parser("add-user", help="create an account")
    add.add_argument("name")
    add.add_argument("--password", help="visible to other local users in ps: prefer stdin")
    add.add_argument("--data-dir", default=os.environ.get("CONCORD_DATA_DIR"))
    _database_argument(add)
    add.set_defaults(func=_add_user)
    mig = sub.add_parser("migrate", help="create or upgrade the database schema, then exit")
    mig.add_argument("--data-dir", default=os.environ.get("CONCORD_DATA_DIR"))
    _database_argument(mig)
    mig.set_defaults(func=_migrate)
    epoch = sub.add_parser(
        "new-epoch",
        help="after restoring a PostgreSQL database, with every instance stopped: a new epoch "
        "(every client does a full sync)",
    )
    _database_argument(epoch)
    epoch.set_defaults(func=_new_epoch)
    add_admin_commands(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
