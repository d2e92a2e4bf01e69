"""``concord-server user list|remove|reset-password|revoke-sessions``, ``backup`` and ``restore``:
the argument parsers and handlers of the operators' commands (:mod:`server.admin` does the work).

The ``user`` commands take ``--database postgresql://…`` (or ``CONCORD_DATABASE_URL``) as
``serve`` does; ``backup`` and ``restore`` copy the SQLite file and refuse a PostgreSQL URL.

Exit status as for the rest of the CLI: 0 done, 1 failed (no such user, a running server for
``restore``, ...), 2 bad arguments (``backup``/``restore`` of a PostgreSQL database).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path


def _db(args: argparse.Namespace) -> Path:
    from .settings import default_data_dir

    data = Path(args.data_dir).expanduser() if args.data_dir else default_data_dir()
    return data / "concord.db"


def _database(args: argparse.Namespace) -> str | Path:
    """``--database`` (a ``postgresql://`` URL), else the SQLite file in the data directory."""
    url: str | None = args.database
    return url if url else _db(args)


def _sqlite_only(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``backup`` and ``restore`` copy the SQLite file; a PostgreSQL database has its own tools."""

    def handler(args: argparse.Namespace) -> int:
        from .storage.factory import is_postgres

        if args.database and is_postgres(args.database):
            print(
                f"error: {args.command} works on the SQLite file only; for PostgreSQL use "
                "pg_dump (backup) or pg_restore (restore), then, with every instance stopped, "
                "concord-server new-epoch --database URL",
                file=sys.stderr,
            )
            return 2
        return fn(args)

    return handler


def read_password(given: str | None) -> str:
    """``--password``, else asked twice on a terminal, else one line of stdin."""
    if given is not None:
        return given
    if sys.stdin.isatty():
        first = getpass.getpass("New password: ")
        if getpass.getpass("Repeat: ") != first:
            raise SystemExit("passwords do not match")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _run(fn: Callable[[argparse.Namespace], str]) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        from .admin import AdminError

        try:
            out = fn(args)
        except AdminError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if out:
            print(out)
        return 0

    return handler


def _list(args: argparse.Namespace) -> str:
    from .admin import list_users

    rows = list_users(_database(args))
    lines = [f"{'USER':<24} {'CREATED (UTC)':<17} {'SESSIONS':>8}  STATE"]
    for r in rows:
        created = datetime.fromtimestamp(r.created_at_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")
        state = "active" if r.active else "removed"
        lines.append(f"{r.name:<24} {created:<17} {r.sessions:>8}  {state}")
    return "\n".join(lines)


def _remove(args: argparse.Namespace) -> str:
    from .admin import deactivate

    n = deactivate(_database(args), args.name)
    return f"removed {args.name}: sign-in disabled, {n} sessions revoked (history kept)"


def _reset_password(args: argparse.Namespace) -> str:
    from .admin import AdminError, set_password_hash
    from .auth import hash_password

    password = read_password(args.password)
    if not password:
        raise AdminError("the password must not be empty")
    n = set_password_hash(_database(args), args.name, hash_password(password))
    return f"new password for {args.name}; {n} sessions revoked"


def _revoke(args: argparse.Namespace) -> str:
    from .admin import revoke_sessions

    n = revoke_sessions(_database(args), args.name)
    return f"revoked {n} sessions of {args.name}"


def _backup(args: argparse.Namespace) -> str:
    from .admin import backup

    backup(_db(args), Path(args.dest))
    return f"backed up to {args.dest}"


def _restore(args: argparse.Namespace) -> str:
    from .admin import restore

    db = _db(args)
    db.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    epoch = restore(Path(args.source), db)
    return f"restored {args.source} as epoch {epoch}: clients will do a full sync"


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the commands on ``concord-server``'s subparsers."""

    def data_dir(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--data-dir", default=os.environ.get("CONCORD_DATA_DIR"))
        p.add_argument(
            "--database",
            default=os.environ.get("CONCORD_DATABASE_URL"),
            metavar="URL",
            help="postgresql://… of a shared deployment (env CONCORD_DATABASE_URL; default: "
            "SQLite in the data dir)",
        )
        return p

    user = sub.add_parser("user", help="list and manage accounts")
    users = user.add_subparsers(dest="user_command", required=True)
    data_dir(users.add_parser("list", help="accounts, signed-in sessions")).set_defaults(
        func=_run(_list)
    )
    for name, fn, text in (
        ("remove", _remove, "disable sign-in and revoke sessions (history and name kept)"),
        ("revoke-sessions", _revoke, "sign out every device"),
    ):
        p = data_dir(users.add_parser(name, help=text))
        p.add_argument("name")
        p.set_defaults(func=_run(fn))
    reset = data_dir(users.add_parser("reset-password", help="new password, sessions revoked"))
    reset.add_argument("name")
    reset.add_argument("--password", help="visible to other local users in ps: prefer stdin")
    reset.set_defaults(func=_run(_reset_password))

    b = data_dir(sub.add_parser("backup", help="consistent copy of the database, while serving"))
    b.add_argument("dest", help="a new file")
    b.set_defaults(func=_sqlite_only(_run(_backup)))
    r = data_dir(
        sub.add_parser("restore", help="replace the database by a backup (server stopped)")
    )
    r.add_argument("source")
    r.set_defaults(func=_sqlite_only(_run(_restore)))
