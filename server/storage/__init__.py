"""Persistence behind one interface; no SQL outside this package."""

from .base import (
    Deleted,
    DomainError,
    FeedState,
    Forbidden,
    IdConflict,
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
