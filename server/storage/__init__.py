"""Persistence behind one interface; no SQL outside this package."""

from .base import (
    Deleted,
    DomainError,
    FeedState,
    Forbidden,
    IdConflict,
    KeyReused,
    NotFound,
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
    "Deleted",
    "DomainError",
    "FeedState",
    "Forbidden",
    "IdConflict",
    "KeyReused",
    "NotFound",
    "SQLiteStorage",
    "Storage",
    "StoredChange",
    "TokenInfo",
    "UnknownUser",
    "UserExists",
    "VersionConflict",
    "WriteResult",
]
