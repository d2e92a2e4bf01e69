"""Sign out of a remote server (docs/architecture.md §2.6): the outbox first, then everything.

The order is the point:

1. **The outbox.** What is not sent yet is sent (:meth:`SignOut.send_unsent` waits until the
   leader has sent it) or dropped — but only when the caller says so: :meth:`SignOut.run`
   refuses with :class:`UnsentActions` while anything is unsent and ``discard`` is False.
2. **Every other process of the profile lets go.** This process stops syncing and never leads
   again (``SyncLeadership.halt``), then posts ``sign_out`` on the sync bus. Each other process
   stops syncing at once, emits ``events.signing_out`` (the app closes its windows and quits)
   and, closing its client, closes the cache *before* it leaves the bus. So once this process is
   alone on the bus (it leads it, and the roster holds only itself), nobody has the cache open.
   The wait is bounded; a process that does not let go in time keeps the cache on disk
   (``SignOutResult.cache_removed`` is False) rather than have it removed under it.
3. **The server session ends**, best effort with a short timeout: ``TokenAuth.revoke`` over the
   session's own credentials (the access token in memory, else one refresh from the keyring —
   nobody else refreshes by now). Unreachable: signed out here all the same, and
   ``SignOutResult.revoked`` says the server session could not be ended.
4. **The keyring entry is forgotten**, the client closed and the profile's cache directory (the
   SQLite database with its ``-wal``/``-shm`` files and backups: cached messages, search index,
   drafts, outbox) removed.

Only the process where the user chose Sign out runs this; the others just let go. No token goes
on the bus: the process that revokes uses its own credentials, after the leader has stopped. Two
processes signing out at the same moment agree on one: the lower member id goes on, the other
closes like any other process and raises :class:`SignedOutElsewhere`.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from ._config import ClientConfig
from ._policy import SignInRequired
from .credentials import Credentials
from .http import ApiError, NetworkError, ServerApi, TokenAuth
from .leadership import SyncLeadership
from .model import OutboxEntry
from .read_model import ReadModel
from .store import LocalStore
from .sync_messages import SigningOut, SyncChannel

__all__ = [
    "NotSent",
    "SignOut",
    "SignOutResult",
    "SignedOutElsewhere",
    "UnsentActions",
    "unsent_words",
]

log = logging.getLogger(__name__)

OTHERS_TIMEOUT_S = 10.0  # how long the other processes of the profile get to let go
REVOKE_TIMEOUT_S = 5.0  # how long the server gets to end the session


class UnsentActions(Exception):
    """The outbox holds actions that are not sent: send them or discard them, explicitly."""

    def __init__(self, entries: list[OutboxEntry]) -> None:
        self.entries = entries
        super().__init__(f"{unsent_words(entries)} {_has(entries)} not been sent yet")


class NotSent(Exception):
    """:meth:`SignOut.send_unsent` gave up: ``entries`` are still unsent; ``reason`` is
    ``unreachable`` (the server did not take them in time), ``held`` (they wait for the
    answer to a conflict) or ``sign_in_required``; the message says it in words."""

    def __init__(self, reason: str, message: str, entries: list[OutboxEntry]) -> None:
        super().__init__(message)
        self.reason = reason
        self.entries = entries


class SignedOutElsewhere(Exception):
    """Another process of the profile signed out at the same moment and went on with it: this
    client is closed, like every other process's (nothing was revoked or removed here)."""


@dataclass(frozen=True)
class SignOutResult:
    """What signing out did. ``revoked``: the server ended the session (or had already);
    ``problem``: why it could not (None when it did); ``discarded``: unsent actions dropped;
    ``cache_removed``: the profile's cache is gone from the disk; ``others_closed``: every
    other process of the profile let go in time."""

    revoked: bool
    problem: str | None
    discarded: int
    cache_removed: bool
    others_closed: bool


def unsent_words(entries: list[OutboxEntry]) -> str:
    """What the user is asked about: "2 messages and 1 change"."""
    messages = sum(e.op == "send" for e in entries)
    changes = len(entries) - messages
    parts = []
    if messages:
        parts.append(f"{messages} message{'s' if messages != 1 else ''}")
    if changes:
        parts.append(f"{changes} change{'s' if changes != 1 else ''}")
    return " and ".join(parts)


def _has(entries: list[OutboxEntry]) -> str:
    return "has" if len(entries) == 1 else "have"


class SignOut:
    """The sign-out of one client (made by ``Client``; see the module's docstring)."""

    def __init__(
        self,
        config: ClientConfig,
        store: LocalStore,
        credentials: Credentials,
        leadership: SyncLeadership,
        channel: SyncChannel,
        model: ReadModel,
    ) -> None:
        self.config = config
        self.store = store
        self.credentials = credentials
        self.leadership = leadership
        self.channel = channel
        self.model = model

    @property
    def possible(self) -> bool:
        """A remote server's session: the embedded server's tokens are minted, never signed
        out of."""
        return not self.credentials.mints

    def unsent(self) -> list[OutboxEntry]:
        """The actions the server does not have yet (queued, held by a conflict, failed)."""
        return [e for e in self.store.outbox() if e.state != "sent"]

    async def send_unsent(self, timeout: float = 20.0) -> None:  # noqa: ASYNC109 (public API)
        """Wait until the leader has sent every queued action; raises :class:`NotSent` when
        the server does not take them within ``timeout`` seconds, when some wait for the answer
        to a conflict, or when the server wants a sign-in first."""
        deadline = time.monotonic() + timeout
        while True:
            entries = self.unsent()
            if not any(e.state == "queued" for e in entries):
                if entries:
                    raise NotSent(
                        "held",
                        f"{unsent_words(entries)} {_has(entries)} to wait for your answer to a "
                        "conflict first",
                        entries,
                    )
                return
            status = self.leadership.status
            if status.state == "sign_in_required":
                raise NotSent("sign_in_required", "The server asks you to sign in again", entries)
            left = deadline - time.monotonic()
            if left <= 0:
                if status.state in ("live", "polling"):
                    them = "it" if len(entries) == 1 else "them"
                    text = f"The server didn't take {them} within {timeout:.0f} s"
                else:
                    why = status.last_error or status.detail or "no answer"
                    text = f"Couldn't reach the server ({why})"
                raise NotSent("unreachable", text, entries)
            try:  # the outbox changes (here or in the leader), or the status does
                async with asyncio.timeout(min(left, 0.5)):
                    await self.model.next_change()
            except TimeoutError:
                pass

    async def run(
        self,
        close: Callable[[], Awaitable[None]],
        *,
        discard: bool = False,
        everywhere: bool = False,
        others_timeout: float = OTHERS_TIMEOUT_S,
        revoke_timeout: float = REVOKE_TIMEOUT_S,
    ) -> SignOutResult:
        """Sign out (the module's docstring says in which order); ``close`` closes the client.
        Raises :class:`UnsentActions` while actions are unsent unless ``discard`` is True."""
        if not self.possible:
            raise RuntimeError("the embedded server's session is not signed out of")
        entries = self.unsent()
        if entries and not discard:
            raise UnsentActions(entries)
        if entries:  # dropped first, so that no leader sends them meanwhile
            self.store.remove([e.id for e in entries])
            self.leadership.outbox_changed()  # re-read here, and posted to the others
            log.info("sign-out: %d unsent action(s) discarded", len(entries))
        self.leadership.signing_out_here = True
        await self.leadership.halt()
        self.channel.post(SigningOut(by=self.leadership.member_id))
        others_closed = await self._others_gone(others_timeout)
        if self.leadership.superseded.is_set():
            await close()
            raise SignedOutElsewhere("another window of this account is signing out")
        revoked, problem = await self._revoke(revoke_timeout, everywhere)
        await self.credentials.forget()
        path = self.store.path.parent  # profiles/<profile key>/: cache.db, -wal, -shm, backups
        await close()
        removed = False
        if others_closed:
            await asyncio.to_thread(shutil.rmtree, path, True)
            removed = not path.exists()
        else:
            log.warning("sign-out: another process kept the cache open; it stays at %s", path)
        log.info("signed out (session ended on the server: %s)", revoked)
        return SignOutResult(revoked, problem, len(entries), removed, others_closed)

    async def _others_gone(self, timeout: float) -> bool:  # noqa: ASYNC109
        """Until this process leads the sync bus and is the only one on it (every other one has
        closed its cache, then left), at most ``timeout`` seconds."""
        bus, me = self.leadership.bus, self.leadership.member_id
        changed = asyncio.Event()
        offs = [
            bus.members_changed.connect(lambda _m: changed.set()),
            bus.leader_changed.connect(lambda _e, _l: changed.set()),
        ]
        deadline = time.monotonic() + timeout
        try:
            while not (bus.is_leader and bus.members() == [me]):
                if self.leadership.superseded.is_set():
                    return False
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                changed.clear()
                try:  # and a look now and then: a roster can settle without a signal
                    async with asyncio.timeout(min(left, 0.1)):
                        await changed.wait()
                except TimeoutError:
                    pass
            return True
        finally:
            for off in offs:
                off()

    async def _revoke(
        self,
        timeout: float,  # noqa: ASYNC109
        everywhere: bool = False,
    ) -> tuple[bool, str | None]:
        """End the session (``everywhere``: every session of the account) on the server;
        (ended, why not)."""
        api = ServerApi(self.config.server_url, transport=self.config.transport, timeout_s=timeout)
        tokens = TokenAuth(api, self.credentials, username=self.config.username)
        tokens.access_token = self.credentials.access_token  # the leader's, when it was us
        try:
            if tokens.access_token is None and not await self.credentials.refresh_token():
                # No secure keyring, and the leader that held the session in memory is gone.
                return False, "no sign-in was kept on this computer to end the session with"
            async with asyncio.timeout(timeout):
                await tokens.revoke(everywhere)
            return True, None
        except SignInRequired:  # the server refused our refresh token: the session is over
            return _ended_here(everywhere)
        except ApiError as exc:
            if exc.status == 401:
                return _ended_here(everywhere)
            log.warning("sign-out: the server did not end the session: %s", exc)
            return False, f"the server answered {exc.status} {exc.message}"
        except (TimeoutError, NetworkError) as exc:
            log.warning("sign-out: the server could not be reached: %s", exc)
            return False, "the server could not be reached"
        except Exception as exc:  # whatever else: the local sign-out still completes
            log.exception("sign-out: ending the session failed")
            return False, f"ending the session failed ({type(exc).__name__})"
        finally:
            await api.aclose()


def _ended_here(everywhere: bool) -> tuple[bool, str | None]:
    """The server refused this device's credentials: its session was over already. The other
    devices' sessions, asked for with ``everywhere``, could not be ended with them."""
    if everywhere:
        return False, (
            "this device's session had already ended, so the other devices could not be "
            "signed out from here: sign in and sign out everywhere again"
        )
    return True, None


def cache_dir(config: ClientConfig) -> Path:
    """The profile's cache directory (what sign-out removes)."""
    return Path(config.data_dir) / "profiles" / config.profile_key
