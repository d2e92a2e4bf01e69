"""The storage boundary: every byte the server persists goes through :class:`Storage`.

The SQLite implementation lives in :mod:`server.storage.sqlite`; a PostgreSQL one can be added
behind the same interface. Domain rules that must hold atomically (membership, versions, the
per-user change feed) are enforced inside the storage transaction, and violations are raised as
the :class:`DomainError` subclasses below, which the HTTP layer maps to 4xx answers.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from core import protocol as p


class DomainError(Exception):
    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        current: p.Conversation | None = None,
        current_message: p.Message | None = None,
    ) -> None:
        super().__init__(message)
        self.current = current
        self.current_message = current_message  # a message's version conflict


class NotFound(DomainError):
    status, code = 404, "not_found"


class Forbidden(DomainError):
    status, code = 403, "forbidden"


class VersionConflict(DomainError):
    status, code = 409, "version_conflict"


class IdConflict(DomainError):
    status, code = 409, "id_conflict"


class Deleted(DomainError):
    status, code = 409, "conversation_deleted"


class UnknownUser(DomainError):
    # 409, not 422: the request is valid by the schema; it conflicts with the server's accounts.
    status, code = 409, "unknown_user"


class UserExists(DomainError):
    status, code = 409, "user_exists"


class KeyReused(DomainError):
    status, code = 422, "idempotency_key_reused"


@dataclass(frozen=True, slots=True)
class FeedState:
    head: int
    min_retained: int


@dataclass(frozen=True, slots=True)
class StoredChange:
    """A change row: ``seq`` within ``user_id``'s feed and its encoded :class:`p.Change`."""

    user_id: int
    seq: int
    payload: bytes


@dataclass(slots=True)
class WriteResult:
    """What a write answered, and the change rows it appended (to publish after commit)."""

    value: object
    changes: list[StoredChange] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TokenInfo:
    user_id: int
    username: str
    expires_at: int
    session: str = ""  # the session (refresh-token family); "" for an access token older than it


class Rotated(enum.Enum):
    """What presenting a refresh token did (:meth:`Storage.rotate_refresh`)."""

    ROTATED = "rotated"  # the current token: spent, its successor is current now
    REPLAYED = "replayed"  # the token just spent, again within the grace window: same successor
    REUSED = "reused"  # a spent token outside the grace window: the session is revoked now
    INVALID = "invalid"  # unknown, expired, or of a revoked session
    # A token naming a live session that is neither its current one nor the one just spent:
    # an older generation, or a forgery. The caller checks which (``server.auth.Tokens``).
    OLDER = "older"


@dataclass(frozen=True, slots=True)
class Rotation:
    outcome: Rotated
    session: str = ""
    user: TokenInfo | None = None  # ROTATED/REPLAYED: the user, with the access token's expiry
    refresh_expires_at: int = 0
    generation: int = 0  # the session's current generation (ROTATED: the new one)
    user_id: int = 0  # OLDER: whose session it names


@dataclass(frozen=True, slots=True)
class NewSession:
    """The hashes and expiries of a session's first (or next) token pair."""

    refresh_hash: str
    refresh_expires_at: int
    access_hash: str
    access_expires_at: int


FeedPage = tuple[int, int, int]  # (user_id, since, limit): a page of one user's feed


class Storage(abc.ABC):
    """Async persistence API used by the HTTP layer. All methods are coroutine-safe."""

    epoch: int

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    # --- accounts and tokens
    @abc.abstractmethod
    async def add_user(self, username: str, password_hash: str, now: int) -> int: ...

    @abc.abstractmethod
    async def user_credentials(self, username: str) -> tuple[int, str] | None: ...

    @abc.abstractmethod
    async def start_session(self, session: str, user_id: int, tokens: NewSession, now: int) -> None:
        """A new session (a sign-in) with its first refresh and access token."""

    @abc.abstractmethod
    async def rotate_refresh(
        self,
        refresh_hash: str,
        session_hint: str,
        successor: Callable[[str, int], NewSession],
        now: int,
        grace_ms: int,
    ) -> Rotation:
        """Spend a refresh token, in one transaction (docs/architecture.md §4.9): the session's
        current one is replaced by ``successor(session, generation + 1)``; the one spent last,
        again within ``grace_ms`` and before its successor was spent, answers the same
        successor; after the window it revokes the session. A token found only by
        ``session_hint`` (the id it names) answers OLDER and changes nothing."""

    @abc.abstractmethod
    async def access_info(self, token_hash: str, now: int) -> TokenInfo | None:
        """The live access token's user and session (None: unknown, expired, revoked)."""

    @abc.abstractmethod
    async def session_live(self, session: str, now: int) -> bool:
        """The session exists and is not revoked (``""``, no session, counts as live)."""

    @abc.abstractmethod
    async def revoke_sessions(self, user_id: int, session: str | None, now: int) -> int:
        """Revoke ``session`` of ``user_id`` (None: every session of the user) with its
        tokens; returns how many live sessions ended."""

    @abc.abstractmethod
    async def server_secret(self, name: str) -> bytes:
        """A random 32-byte secret named ``name``, made once and kept with the data (so every
        instance of a deployment and every restart uses the same one)."""

    # --- the change feed
    @abc.abstractmethod
    async def feed_state(self, user_id: int) -> FeedState: ...

    @abc.abstractmethod
    async def changes_since(self, user_id: int, since: int, limit: int) -> list[StoredChange]: ...

    async def feed_heads(self, user_ids: list[int]) -> dict[int, FeedState]:
        """The feed state of each user (unknown ones left out), in one read where the engine
        allows: the heartbeats of all idle streams due at once (docs/architecture.md §4.7).
        This default asks one by one."""
        return {user_id: await self.feed_state(user_id) for user_id in user_ids}

    async def changes_since_many(self, wants: list[FeedPage]) -> dict[FeedPage, list[StoredChange]]:
        """:meth:`changes_since` for several ``(user_id, since, limit)`` at once, in one read
        where the engine allows: the catch-up of every user poked in one loop iteration (a
        broadcast from another instance, docs/architecture.md §4.7). This default asks one by
        one."""
        return {want: await self.changes_since(*want) for want in wants}

    async def sessions_live(self, sessions: list[str], now: int) -> set[str]:
        """Those of ``sessions`` that stand (as :meth:`session_live`), in one read where the
        engine allows. This default asks one by one."""
        return {s for s in sessions if await self.session_live(s, now)}

    # --- reads
    @abc.abstractmethod
    async def list_conversations(self, user_id: int) -> p.ConversationList: ...

    @abc.abstractmethod
    async def messages_page(
        self, user_id: int, conversation_id: str, before: int | None, limit: int
    ) -> p.MessagePage: ...

    @abc.abstractmethod
    async def snapshot(self, user_id: int, messages_per_conversation: int) -> p.Snapshot: ...

    @abc.abstractmethod
    async def search_messages(
        self, user_id: int, terms: list[str], before: int | None, limit: int
    ) -> p.SearchPage:
        """The user's messages matching every term (the last one as a prefix), newest first;
        ``before``: the ``next_before`` of the previous page."""

    # --- writes: each is one transaction that also appends the affected users' change rows
    @abc.abstractmethod
    async def create_conversation(
        self, user_id: int, req: p.ConversationCreate, now: int
    ) -> WriteResult: ...

    @abc.abstractmethod
    async def patch_conversation(
        self,
        user_id: int,
        conversation_id: str,
        req: p.ConversationPatch,
        now: int,
        op_id: str | None = None,
    ) -> WriteResult:
        """``op_id`` (the request's ``Idempotency-Key``): a retry returns the first answer."""

    @abc.abstractmethod
    async def delete_conversation(
        self,
        user_id: int,
        conversation_id: str,
        base_version: int,
        now: int,
        op_id: str | None = None,
    ) -> WriteResult: ...

    @abc.abstractmethod
    async def send_message(
        self, user_id: int, conversation_id: str, req: p.MessageCreate, now: int
    ) -> WriteResult: ...

    @abc.abstractmethod
    async def mark_read(
        self, user_id: int, conversation_id: str, seq: int, now: int
    ) -> WriteResult: ...

    @abc.abstractmethod
    async def edit_message(
        self,
        user_id: int,
        conversation_id: str,
        message_id: str,
        req: p.MessagePatch,
        now: int,
        op_id: str | None = None,
    ) -> WriteResult:
        """The author's edit (``message.updated`` to every member); a retry with the same
        ``op_id`` returns the first answer."""

    @abc.abstractmethod
    async def delete_message(
        self,
        user_id: int,
        conversation_id: str,
        message_id: str,
        base_version: int | None,
        now: int,
        op_id: str | None = None,
    ) -> WriteResult:
        """The author's delete: the text is erased, a tombstone kept (``message.deleted``)."""
