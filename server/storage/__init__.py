"""Persistence behind one interface; no SQL outside this package."""

from ._migrations import DB_VERSION, DatabaseTooNew, schema_version
from .base import (
    Deleted,
    DomainError,
    FeedPage,
    FeedState,
    Forbidden,
    IdConflict,
    KeyReused,
    NewSession,
    NotFound,
    Rotated,
    Rotation,
    Storage,
    StoredChange,
    TokenInfo,
    UnknownUser,
    UserExists,
    VersionConflict,
    WriteResult,
)
from .sqlite import SQLiteStorage

__all__ = [
    "DB_VERSION",
    "DatabaseTooNew",
    "Deleted",
    "DomainError",
    "FeedPage",
    "FeedState",
    "Forbidden",
    "IdConflict",
    "KeyReused",
    "NewSession",
    "NotFound",
    "Rotated",
    "Rotation",
    "SQLiteStorage",
    "Storage",
    "StoredChange",
    "TokenInfo",
    "UnknownUser",
    "UserExists",
    "VersionConflict",
    "WriteResult",
    "schema_version",
]
