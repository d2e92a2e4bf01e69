"""Where the refresh token lives: the OS keyring (service ``concord``, one entry per profile).

Keyring calls can block (D-Bus, an unlock prompt), so they run in a thread with a timeout and
never on the event loop. Without a usable backend — the headless default ``fail.Keyring``, or a
plain-text file backend such as ``keyrings.alt``'s, which is refused on purpose — the session keeps
its tokens in memory only and says so once; no token is ever written to a plain file, a log line
or the bus.

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
        self._memory_refresh: str | None = None
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
        if self._memory_refresh is not None:
            return self._memory_refresh
        if self._source is not None:  # minted once, then again only after a refusal (forget)
            try:
                self._memory_refresh = await self._source()
            except Exception as exc:  # the database is busy or unreadable: retry like a network
                raise NetworkError(f"no token from the embedded server's data: {exc}") from exc
            return self._memory_refresh
        try:
            return await self._call("get_password", self.account)
        except KeyringUnavailable as exc:
            self._note(str(exc))
            return None

    def seed_refresh_token(self, token: str) -> None:
        """Use this token for the session without touching the keyring."""
        self._memory_refresh = token

    async def save_refresh_token(self, token: str) -> None:
        """Keep the token for this session; persist it only in a secure keyring."""
        self._memory_refresh = token
        if self._source is not None:
            return  # minted on demand: nothing to remember
        try:
            await self._call("set_password", self.account, token)
        except KeyringUnavailable as exc:
            self._note(str(exc))

    async def forget(self) -> None:
        self._memory_refresh = None
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
