"""``Client``: the one object the app uses (docs/architecture.md §2, §5).

Every process of a profile opens a ``Client`` on the same cache database and the same local bus.
The facade over four parts, each with a public interface of its own:

* :class:`~core.read_model.ReadModel` — the views: the cache's server rows with this device's
  pending actions laid over them, kept current as rows change;
* :class:`~core.leadership.SyncLeadership` — the profile's sync bus: its leader runs the
  :class:`~core.engine.SyncEngine` and the :class:`~core.outbox.OutboxSender`, and the processes
  tell each other what changed (:mod:`core.sync_messages`);
* :class:`~core.commands.Commands` and :class:`~core._drafts.Drafts` — the user's changes,
  committed to the shared cache before they return (shown at once as pending; the leader sends);
* :class:`~core.events.ClientEvents` — what it tells the app: ``client.events.<name>.connect(cb)``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from ._config import ClientConfig
from ._drafts import Drafts
from .bus import LocalBus
from .commands import Commands
from .credentials import Credentials
from .engine import SyncEngine, SyncStatus
from .events import ClientEvents
from .leadership import SyncLeadership, bus_scope
from .model import (
    Conflict,
    ConversationView,
    ErrorInfo,
    MessageView,
    OutboxEntry,
    message_view,
)
from .read_model import ReadModel
from .search import Search
from .search_results import SearchResults, ServerResults
from .sign_out import SignOut, SignOutResult
from .store import LocalStore
from .sync_messages import SyncChannel

# ClientConfig (core._config) and ErrorInfo (core.model) are re-exported: they belong to the facade.
__all__ = ["Client", "ClientConfig", "ErrorInfo"]


class Client:
    """Opened with :meth:`open`; ``events`` are its signals, ``leadership`` its place on the
    profile's sync bus (role, bus, engine: for the sync inspector)."""

    def __init__(self, config: ClientConfig, store: LocalStore, bus: LocalBus) -> None:
        self.config = config
        self.me = config.username
        self.store = store
        self.credentials = Credentials(config.profile_key)
        if config.refresh_token:
            self.credentials.seed_refresh_token(config.refresh_token)
        if config.refresh_token_source is not None:
            self.credentials.set_source(config.refresh_token_source)
        self.events = ClientEvents()
        channel = SyncChannel(bus)
        self._model = ReadModel(store, self.me, self.events)
        self._drafts = Drafts(store, self._model, self.events, channel)
        self.leadership = SyncLeadership(
            config, store, self.credentials, bus, channel, self._model, self._drafts, self.events
        )
        self._search = Search(store, self._model, self.leadership)
        self._commands = Commands(store, self.me, self._model, self._drafts, self.leadership)
        self._sign_out = SignOut(
            config, store, self.credentials, self.leadership, channel, self._model
        )
        self._closed = False

    # --- opening and closing ---------------------------------------------------------------------

    @classmethod
    async def open(cls, config: ClientConfig) -> Client:
        """Returns with the cached state at once; the network is used in the background."""
        path = Path(config.data_dir) / "profiles" / config.profile_key / "cache.db"
        store = LocalStore(path, apply_log=config.apply_log, max_messages=config.cache_messages)
        bus = await LocalBus.open(scope=bus_scope(config), runtime_dir=config.runtime_dir)
        client = cls(config, store, bus)
        await client.leadership.start()
        return client

    async def close(self) -> None:
        """Stop syncing, close the cache, leave the bus (in that order: a process that has left
        the bus never has the cache open, docs/architecture.md §2.6). Closing twice is fine."""
        if self._closed:
            return
        self._closed = True
        await self.leadership.close(before_leaving=self.store.close)
        self.store.close()  # already closed, unless leaving failed first

    # --- signing out (remote servers, docs/architecture.md §2.6) --------------------------------

    @property
    def can_sign_out(self) -> bool:
        """A remote server's session (the embedded server's is never signed out of)."""
        return self._sign_out.possible

    def unsent(self) -> list[OutboxEntry]:
        """The actions the server does not have yet: what signing out would lose."""
        return self._sign_out.unsent()

    async def send_unsent(self, timeout: float = 20.0) -> None:  # noqa: ASYNC109 (public API)
        """Wait until the leader has sent every queued action; raises
        ``core.sign_out.NotSent`` when it could not within ``timeout`` seconds (the server is
        unreachable, some wait for a conflict's answer, a sign-in is needed)."""
        await self._sign_out.send_unsent(timeout)

    async def sign_out(
        self,
        *,
        discard: bool = False,
        everywhere: bool = False,
        others_timeout: float = 10.0,
        revoke_timeout: float = 5.0,
    ) -> SignOutResult:
        """Sign out and close this client: every other process of the profile lets go (its
        windows close), the server session is revoked (best effort, ``revoke_timeout``), the
        keyring entry is forgotten and the profile's cache removed. Raises
        ``core.sign_out.UnsentActions`` while actions are unsent, unless ``discard`` is True:
        send them first (:meth:`send_unsent`) or discard them, as the user chose.
        ``everywhere``: every session of the account ends, on every device (``logout-all``)."""
        return await self._sign_out.run(
            self.close,
            discard=discard,
            everywhere=everywhere,
            others_timeout=others_timeout,
            revoke_timeout=revoke_timeout,
        )

    # --- sync state ------------------------------------------------------------------------------

    @property
    def status(self) -> SyncStatus:
        """The sync status shown in this process (role "follower" where another one syncs)."""
        return self.leadership.status

    @property
    def engine(self) -> SyncEngine | None:
        """The sync engine while this process leads (None in a follower, or with sync off)."""
        return self.leadership.engine

    @property
    def sync_bus(self) -> LocalBus:
        """The profile's sync bus this client has joined (docs/architecture.md §2.3): its epoch,
        members and leader, and the bus for other state the profile's processes share (the
        app's settings)."""
        return self.leadership.bus

    def cursor_id(self) -> str | None:
        """The position in the server's change feed that the cache has applied (None before
        the first full sync)."""
        return self.store.cursor_id()

    def outbox(self) -> list[OutboxEntry]:
        """The durable outbox, oldest first: every action not yet settled, in any state
        (queued, sent, held, failed)."""
        return self.store.outbox()

    async def sign_in(self, password: str) -> None:
        """Sign in with a password (the leader only; followers are signed in through it)."""
        await self.leadership.sign_in(password)

    def set_visible(self, visible: bool) -> None:
        """True while any window of this process is visible (polling pauses otherwise)."""
        self.leadership.set_visible(visible)

    def network_changed(self) -> None:
        """The network came up or changed: reconnect now rather than after a read timeout
        (a no-op in a follower: its leader's process sees the same network)."""
        self.leadership.network_changed()

    def set_server_url(self, url: str) -> None:
        """The server is served anew at ``url`` (the embedded server was restarted, maybe on
        another port). Every process keeps it for when it leads; the leader starts its sync
        over at once — its stream, its outbox, with a fresh token — rather than wait for what
        is in flight to the old address (that port may be another program's now). The profile
        key does not change (``profile`` names it, as for any server whose URL is not stable)."""
        self.config.server_url = url
        self.leadership.lead_again()

    async def wait_synced(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 (public API)
        """Until every action is acknowledged and its change applied here (read-your-writes)."""
        async with asyncio.timeout(timeout):
            while any(e.state in ("queued", "sent") for e in self.store.outbox()):
                await self._model.next_change()

    # --- reading ---------------------------------------------------------------------------------

    def conversations(self) -> list[ConversationView]:
        """Pinned first, then most recently updated; each with unread count and pending flag."""
        return self._model.conversations()

    def conversation(self, conversation_id: str) -> ConversationView | None:
        return self._model.conversation(conversation_id)

    def messages(self, conversation_id: str) -> list[MessageView]:
        return self._model.messages(conversation_id)

    def unread(self, conversation_id: str) -> int:
        return self._model.unread(conversation_id)

    def total_unread(self) -> int:
        return self._model.total_unread()

    async def load_older(
        self, conversation_id: str, limit: int = 50, before: int | None = None
    ) -> list[MessageView]:
        """Up to ``limit`` messages just before seq ``before`` (None: before the oldest of
        :meth:`messages`), oldest first: from the cache when it holds them — offline too —
        else fetched from the server into the cache (through the leader when following).
        Empty when there is nothing older."""
        if before is None:
            shown = [m.seq for m in self.messages(conversation_id) if m.seq is not None]
            before = min(shown) if shown else None
        if before == 1:
            return []
        cached = self.store.messages_before(conversation_id, before, limit)
        if not cached:
            if await self.leadership.load_older(conversation_id, limit, before) == 1:
                return []
            cached = self.store.messages_before(conversation_id, before, limit)
        return [message_view(m) for m in cached]

    def search(
        self, query: str, limit: int = 50, conversation_id: str | None = None
    ) -> SearchResults:
        """Search the cache, offline: conversations whose title matches and messages, newest
        first (only ``conversation_id``'s when given), with the match ranges to highlight. Each
        word of ``query`` matches a whole word, the last one as a prefix; case and diacritics
        are ignored; nothing typed is ever an error (docs/architecture.md §5.11)."""
        return self._search.search(query, limit, conversation_id)

    async def search_server(
        self, query: str, before: int | None = None, limit: int = 20
    ) -> ServerResults:
        """One page of the server's matching messages, newest first: history older than the
        cache too. ``before``: the previous page's ``next_before``. Raises
        ``core.http.NetworkError`` (offline) or ``ApiError``."""
        return await self._search.search_server(query, before, limit)

    def draft(self, conversation_id: str) -> str:
        """This device's unsent text for a conversation ("" when there is none)."""
        return self._drafts.draft(conversation_id)

    def drafts(self) -> dict[str, str]:
        """Every non-empty draft, by conversation id (some may be of conversations now gone)."""
        return self._drafts.drafts()

    # --- changes (optimistic: committed to the outbox before returning) --------------------------

    async def create_conversation(
        self, title: str, members: tuple[str, ...] | list[str] = ()
    ) -> ConversationView:
        return self._commands.create_conversation(title, members)

    async def rename_conversation(self, conversation_id: str, title: str) -> None:
        self._commands.rename_conversation(conversation_id, title)

    async def set_pinned(self, conversation_id: str, pinned: bool) -> None:
        self._commands.set_pinned(conversation_id, pinned)

    async def set_members(self, conversation_id: str, members: list[str]) -> None:
        self._commands.set_members(conversation_id, members)

    async def delete_conversation(self, conversation_id: str) -> None:
        self._commands.delete_conversation(conversation_id)

    async def send_message(self, conversation_id: str, body: str) -> MessageView:
        return self._commands.send_message(conversation_id, body)

    async def edit_message(self, conversation_id: str, message_id: str, body: str) -> MessageView:
        """Edit one of the user's messages: shown at once as pending, sent through the outbox
        (after the message's send, if it is still being sent); rolled back, with an ``error``
        and the text put back into the draft, if the server refuses it."""
        return self._commands.edit_message(conversation_id, message_id, body)

    async def delete_message(self, conversation_id: str, message_id: str) -> None:
        """Delete one of the user's messages: it disappears at once, everywhere once sent."""
        self._commands.delete_message(conversation_id, message_id)

    def message(self, conversation_id: str, message_id: str) -> MessageView | None:
        """One message as shown (None when it is not cached, or deleted)."""
        return self._model.message(conversation_id, message_id)

    async def mark_read(self, conversation_id: str) -> None:
        self._commands.mark_read(conversation_id)

    async def resolve_conflict(self, conflict: Conflict, keep_mine: bool) -> None:
        """The user's answer for a chain held by a conflict: "keep mine" sends the whole chain
        again on top of the version the user was shown (a change made since is asked about
        again); "reload" drops it (theirs stays)."""
        self._commands.resolve_conflict(conflict, keep_mine)

    async def keep_mine(self, conflict: Conflict) -> None:
        """Re-apply our losing chain on top of the version the conflict showed."""
        await self.resolve_conflict(conflict, keep_mine=True)

    async def reload(self, conflict: Conflict) -> None:
        """Drop our losing chain: the change made elsewhere stays."""
        await self.resolve_conflict(conflict, keep_mine=False)

    async def dismiss_failed(self) -> None:
        """Drop actions the server refused (after the user has seen the error)."""
        self._commands.dismiss_failed()

    def set_draft(self, conversation_id: str, text: str) -> None:
        """Store a draft (empty text clears it) and tell every window of this device."""
        self._drafts.set_draft(conversation_id, text)

    def take_draft(self, conversation_id: str) -> str:
        """Remove and return a draft; of several processes asking at once, one gets the text
        (for a conversation that is gone: the UI keeps its text somewhere else)."""
        return self._drafts.take_draft(conversation_id)
