"""Which store a ``--database`` names: a ``postgresql://`` URL (``concord[scale]``), or else the
SQLite file (the embedded default). The PostgreSQL store, and psycopg with it, is imported only
when a URL asks for it, so the desktop app, its bundle and a plain install never need them."""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path

from .base import Storage

SCHEMES = ("postgresql://", "postgres://")
EXTRA_HINT = "pip install 'concord[scale]'"


class MissingExtra(RuntimeError):
    """PostgreSQL storage was asked for, but psycopg (the ``concord[scale]`` extra) is not
    installed."""


def is_postgres(database: str | os.PathLike[str]) -> bool:
    return isinstance(database, str) and database.startswith(SCHEMES)


def storage_for(
    database: str | os.PathLike[str], *, retention: int = 10_000, durable: bool = True
) -> Storage:
    """A store (not opened yet) for a ``postgresql://`` URL or an SQLite file path."""
    if is_postgres(database):
        try:  # by name: the desktop app (desktop.embedded) and its bundle never import it
            postgres = importlib.import_module(f"{__package__}.postgres")
        except ImportError as exc:  # psycopg, psycopg_pool, or psycopg's libpq wrapper
            raise MissingExtra(
                f"PostgreSQL storage needs the concord[scale] extra ({EXTRA_HINT}): {exc}"
            ) from exc
        store: Storage = postgres.PostgresStorage(str(database), retention=retention)
        return store
    from .sqlite import SQLiteStorage

    return SQLiteStorage(Path(database), retention=retention, synchronous_full=durable)


def describe(database: str | os.PathLike[str]) -> str:
    """The database for a log line: a URL without its password, or the file's path."""
    if not is_postgres(database):
        return os.fspath(database)
    return redact_url(str(database))


def redact_url(url: str) -> str:
    """``url`` without its password, in the userinfo or a ``password=`` query parameter (for
    logs and messages)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is not None:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        parts = parts._replace(netloc=netloc)
    query = re.sub(r"(^|&)(password=)[^&]*", r"\1\2***", parts.query)
    return urlunsplit(parts._replace(query=query))
