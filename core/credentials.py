"""Where the refresh token lives: the OS keyring (service ``concord``, one entry per profile).

Keyring calls can block (D-Bus, an unlock prompt), so they run in a thread with a timeout and
never on the event loop. Refresh tokens rotate on every refresh (docs/architecture.md §5.10):
each successor is saved before it is used, and the keyring, which every process of the device
reads, is asked for the token each time rather than a copy in memory. Without a usable backend —
the headless default ``fail.Keyring``, or a plain-text file backend such as ``keyrings.alt``'s,
which is refused on purpose — the session keeps its tokens in memory only and says so once; no
token is ever written to a plain file, a log line or the bus.

A profile whose server is the app's own embedded one has a *token source* instead: a callable
that mints a fresh refresh token straight from that server's database (same user, same data
dir). Such a session never reads or writes the keyring and never needs a password.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from .http import NetworkError

log = logging.getLogger(__name__)

SERVICE = "concord"
_PLAINTEXT_BACKENDS = ("keyrings.alt", "PlaintextKeyring", "fail.Keyring", "null.Keyring")


class KeyringUnavailable(Exception):
    """No secure keyring backend; the message says why, in words for the user."""


def backend_problem() -> str | None:
    """Why the keyring cannot keep a sign-in securely (None: it can), in words for the user."""
    try:
        import keyring
    except ImportError:
        return "the keyring package is not installed"
    backend = keyring.get_keyring()
    name = f"{type(backend).__module__}.{type(backend).__qualname__}"
    if any(marker in name for marker in _PLAINTEXT_BACKENDS):
        return (
            f"no secure keyring is available ({name}); sign-in will not be remembered "
            "after this session"
        )
    return None


class Credentials:
    """The refresh token of one profile in the keyring, with the access token in memory."""

    def __init__(self, account: str, *, timeout_s: float = 5.0) -> None:
        self.account = account
        self.timeout_s = timeout_s
        self.access_token: str | None = None
        self.access_expires_at = 0
        self._memory_refresh: str | None = None  # the keyring's copy, or the only one
        self._seeded = False  # a token given for this session: memory only
        self._unsaved = False  # the keyring did not take the newest token: memory is newer
        self.keyring_error: str | None = None
        self._source: Callable[[], Awaitable[str]] | None = None

    def set_source(self, source: Callable[[], Awaitable[str]] | None) -> None:
        """Mint refresh tokens with ``source`` (the embedded server's database) instead of
        keeping one in the keyring: a token the server refuses (a rebuilt database) is simply
        minted again, so the account never needs a password."""
        self._source = source

    async def _call(self, fn_name: str, *args: str) -> str | None:
        problem = await asyncio.to_thread(backend_problem)
        if problem:
            raise KeyringUnavailable(problem)
        import keyring

        fn = getattr(keyring, fn_name)
        try:
            async with asyncio.timeout(self.timeout_s):  # a cancel stays a cancel (not wait_for)
                return await asyncio.to_thread(fn, SERVICE, *args)
        except TimeoutError:
            raise KeyringUnavailable("the keyring did not answer in time") from None
        except Exception as exc:  # keyring.errors.KeyringError and backend-specific errors
            raise KeyringUnavailable(f"the keyring failed: {type(exc).__name__}") from None

    @property
    def mints(self) -> bool:
        """Tokens come from a source: a refused one is replaced, never "sign in again"."""
        return self._source is not None

    async def refresh_token(self) -> str | None:
        """The refresh token to present. A keyring profile reads the keyring every time: refresh
        tokens rotate, and another process of the device may have led, rotated and saved a newer
        one since this process last held it; memory is only the fallback when the keyring cannot
        answer (or did not take the newest token). Seeded and minted tokens live in memory."""
        if self._source is not None:
            if self._memory_refresh is None:  # minted once, then again only after a refusal
                try:
                    self._memory_refresh = await self._source()
                except Exception as exc:  # the database is busy or unreadable: like a network
                    raise NetworkError(f"no token from the embedded server's data: {exc}") from exc
            return self._memory_refresh
        if self._memory_refresh is not None and (self._seeded or self._unsaved):
            return self._memory_refresh
        try:
            token = await self._call("get_password", self.account)
        except KeyringUnavailable as exc:
            self._note(str(exc))
            return self._memory_refresh
        if token:
            self._memory_refresh = token
        return token

    def seed_refresh_token(self, token: str) -> None:
        """Use this token (and the tokens it rotates into) for the session without touching the
        keyring."""
        self._memory_refresh = token
        self._seeded = True

    async def save_refresh_token(self, token: str) -> None:
        """Keep the token for this session (a rotated one replaces the one it was refreshed
        with); persist it only in a secure keyring, and only for a keyring profile."""
        self._memory_refresh = token
        if self._source is not None or self._seeded:
            return  # minted on demand, or given for this session: nothing to remember
        try:
            await self._call("set_password", self.account, token)
            self._unsaved = False
        except KeyringUnavailable as exc:
            self._unsaved = True
            self._note(str(exc))

    async def forget(self) -> None:
        self._memory_refresh = None
        self._seeded = self._unsaved = False
        self.access_token = None
        if self._source is not None:
            return  # the keyring holds nothing of ours
        try:
            await self._call("delete_password", self.account)
        except KeyringUnavailable:
            pass

    def _note(self, problem: str) -> None:
        if self.keyring_error is None:
            log.warning("%s", problem)
        self.keyring_error = problem
