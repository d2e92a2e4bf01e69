"""Where the refresh token lives: the OS keyring (service ``concord``, one entry per profile).

Keyring calls can block (D-Bus, an unlock prompt), so they run in a thread with a timeout and
never on the event loop. Without a usable backend — the headless default ``fail.Keyring``, or a
plain-text file backend such as ``keyrings.alt``'s, which is refused on purpose — the session keeps
its tokens in memory only and says so once; no token is ever written to a plain file, a log line
or the bus.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("concord.credentials")

SERVICE = "concord"
_PLAINTEXT_BACKENDS = ("keyrings.alt", "PlaintextKeyring", "fail.Keyring", "null.Keyring")


class KeyringUnavailable(Exception):
    """No secure keyring backend; the message says why, in words for the user."""


def _backend_problem() -> str | None:
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

    async def _call(self, fn_name: str, *args: str) -> str | None:
        problem = await asyncio.to_thread(_backend_problem)
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

    async def refresh_token(self) -> str | None:
        if self._memory_refresh is not None:
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
        try:
            await self._call("set_password", self.account, token)
        except KeyringUnavailable as exc:
            self._note(str(exc))

    async def forget(self) -> None:
        self._memory_refresh = None
        self.access_token = None
        try:
            await self._call("delete_password", self.account)
        except KeyringUnavailable:
            pass

    def _note(self, problem: str) -> None:
        if self.keyring_error is None:
            log.warning("%s", problem)
        self.keyring_error = problem
