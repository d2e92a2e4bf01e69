"""Operators' commands: accounts (list, deactivate, reset a password, revoke sessions) on the
SQLite file or a PostgreSQL database (the rules: :mod:`.storage.accounts`), and an online backup
and a restore of the SQLite file (PostgreSQL: ``pg_dump``/``pg_restore``, then ``new-epoch``).

On SQLite they use plain ``sqlite3`` (WAL, a busy timeout), so they run while the server serves —
except ``restore``, which needs the server stopped: ``serve`` holds :class:`ServeLock` on the
data directory for as long as it runs.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from .storage import accounts
from .storage.accounts import DISABLED_HASH as DISABLED_HASH
from .storage.accounts import DatabaseUnavailable, postgres_transaction
from .storage.accounts import UserRow as UserRow
from .storage.factory import MissingExtra, is_postgres


class AdminError(Exception):
    """A command that cannot be done (exit status 1); the message is for the operator."""


if sys.platform == "win32":  # pragma: no cover - Windows only, untested here
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


class ServeLock:
    """``DIR/serve.lock``, held by a serving process; the kernel drops it when the process dies."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "serve.lock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock if no other process holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        if _try_lock(fd):
            self._fd = fd
            return True
        os.close(fd)
        return False

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@contextmanager
def _connect(database: str | Path, write: bool = False) -> Iterator[Any]:
    """A connection to an existing database (an SQLite file, or a ``postgresql://`` URL); with
    ``write``, inside one write transaction (PostgreSQL: always one transaction)."""
    if is_postgres(database):
        try:
            with postgres_transaction(str(database)) as pg:
                yield pg
        except (MissingExtra, DatabaseUnavailable) as exc:
            raise AdminError(str(exc)) from None
        return
    db = Path(database)
    if not db.exists():
        raise AdminError(f"no database at {db}")
    with closing(sqlite3.connect(db, isolation_level=None, timeout=30)) as conn:
        conn.execute("PRAGMA busy_timeout=30000")
        if not write:
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def _now() -> int:
    return int(time.time() * 1000)


def _user_id(conn: Any, name: str) -> int:
    uid = accounts.user_id(conn, name)
    if uid is None:
        raise AdminError(f"no user {name!r}")
    return uid


def list_users(database: str | Path) -> list[UserRow]:
    with _connect(database) as conn:
        return accounts.list_users(conn, _now())


def revoke_sessions(database: str | Path, name: str) -> int:
    """Revoke every session of ``name``; returns how many (signed-in devices) ended.
    Refreshing fails at once; a running server stops trusting an access token it has already
    checked within ``token_recheck_s`` (10 s), and its open streams end by then too."""
    with _connect(database, write=True) as conn:
        return accounts.revoke_all(conn, _user_id(conn, name), _now())


def set_password_hash(database: str | Path, name: str, password_hash: str) -> int:
    """Replace ``name``'s password hash and revoke every session (returns how many)."""
    with _connect(database, write=True) as conn:
        return accounts.set_password_hash(conn, _user_id(conn, name), password_hash, _now())


def deactivate(database: str | Path, name: str) -> int:
    """``user remove``: no sign-in, no session; the history stays, and so does the name (nobody
    can take it over and speak as this person in old conversations)."""
    return set_password_hash(database, name, DISABLED_HASH)


def backup(db: Path, dest: Path) -> None:
    """A consistent copy of ``db`` while the server writes (SQLite's online backup API), written
    beside ``dest`` and renamed into place once complete."""
    if dest.exists():
        raise AdminError(f"{dest} exists: choose a new file")
    part = dest.with_name(dest.name + f".part-{secrets.token_hex(4)}")
    try:
        with _connect(db) as src:
            with closing(sqlite3.connect(part)) as out:
                # In one step: one read transaction, a consistent snapshot; under WAL the
                # server's writers go on meanwhile (a stepped copy would restart on each write).
                src.backup(out)
                out.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        with open(part, "rb") as f:
            os.fsync(f.fileno())
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)


def restore(source: Path, db: Path) -> int:
    """Replace ``db`` with the backup ``source`` under a new epoch (returned): every client's
    cursor belongs to the old one, so each does a full sync instead of trusting a feed that went
    back in time. The server must be stopped (:class:`ServeLock`)."""
    lock = ServeLock(db.parent)
    if not lock.acquire():
        raise AdminError("the server is running on this data directory: stop it first")
    try:
        if not source.is_file():
            raise AdminError(f"no backup at {source}")
        with closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as check:
            if check.execute("PRAGMA quick_check").fetchone() != ("ok",):
                raise AdminError(f"{source} is damaged")
            has_meta = check.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
            ).fetchone()
            if not has_meta:
                raise AdminError(f"{source} is not a Concord server database")
        epoch = secrets.randbelow(2**31 - 2) + 2
        with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(db)) as dst:
            src.backup(dst)
            dst.execute("INSERT OR REPLACE INTO meta VALUES ('epoch', ?)", (str(epoch),))
            dst.commit()
        return epoch
    finally:
        lock.release()
