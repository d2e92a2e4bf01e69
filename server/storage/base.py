"""The storage boundary: every byte the server persists goes through :class:`Storage`.

The SQLite implementation lives in :mod:`server.storage.sqlite`; a PostgreSQL one can be added
behind the same interface. Domain rules that must hold atomically (membership, versions, the
per-user change feed) are enforced inside the storage transaction, and violations are raised as
the :class:`DomainError` subclasses below, which the HTTP layer maps to 4xx answers.
"""

from __future__ import annotations

import abc
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
    async def put_token(
        self, token_hash: str, user_id: int, kind: str, expires_at: int
    ) -> None: ...

    @abc.abstractmethod
    async def token_info(self, token_hash: str, kind: str, now: int) -> TokenInfo | None: ...

    @abc.abstractmethod
    async def server_secret(self, name: str) -> bytes:
        """A random 32-byte secret named ``name``, made once and kept with the data (so every
        instance of a deployment and every restart uses the same one)."""

    # --- the change feed
    @abc.abstractmethod
    async def feed_state(self, user_id: int) -> FeedState: ...

    @abc.abstractmethod
    async def changes_since(self, user_id: int, since: int, limit: int) -> list[StoredChange]: ...

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
