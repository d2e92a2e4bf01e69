"""The engine's tokens: sign-in, refresh (once more for a minted token), "sign-in required"
only when the server refused a fresh token, and API calls that refresh once on a 401."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar, TypeVarTuple

from ._policy import SignInRequired
from .credentials import Credentials
from .http import ApiError, NetworkError, ServerApi

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class TokenMixin:
    """The token half of :class:`core.engine.SyncEngine` (which provides these attributes)."""

    api: ServerApi
    credentials: Credentials
    username: str
    password: str | None
    _need_sign_in: bool
    _signed_in: asyncio.Event

    def _set_status(self, state: str, detail: str, next_retry_s: float | None = None) -> None:
        raise NotImplementedError

    async def wait_signed_in(self) -> None:
        await self._signed_in.wait()

    async def sign_in(self, password: str) -> None:
        tokens = await self.api.sign_in(self.username, password)
        self._need_sign_in = False
        self._use_access(tokens.access_token, tokens.expires_at)
        await self.credentials.save_refresh_token(tokens.refresh_token)

    async def _sign_in_again(self, password: str) -> None:
        try:
            await self.sign_in(password)
        except ApiError as exc:
            if exc.status in (400, 401, 403, 422):
                raise SignInRequired(exc.message) from None
            raise

    def _use_access(self, token: str, expires_at: int) -> None:
        self.api.access_token = token
        self.credentials.access_token = token
        self.credentials.access_expires_at = expires_at
        self._signed_in.set()

    async def refresh_access(self) -> None:
        """A new access token from the refresh token; SignInRequired when that is refused
        (a minted token that is refused is minted once more first)."""
        for _ in range(2 if self.credentials.mints else 1):
            refresh = await self.credentials.refresh_token()
            if not refresh and self.password:  # no keyring, a new leader: sign in again
                await self._sign_in_again(self.password)
                return
            if not refresh:
                raise SignInRequired("no refresh token")
            try:
                tokens = await self.api.refresh(refresh)
            except ApiError as exc:
                if exc.status not in (400, 401, 403, 422):
                    raise
                await self.credentials.forget()
                self.password = None  # signed out by the server: only the user signs in again
                refused = exc.message
                continue
            self._use_access(tokens.access_token, tokens.expires_at)
            return
        if self.credentials.mints:  # our own local server refuses what it minted: not ready yet
            raise NetworkError(f"the local server refused a fresh token: {refused}")
        raise SignInRequired(refused)

    async def ensure_token(self) -> None:
        if self.api.access_token:
            return
        try:
            if self._need_sign_in:
                raise SignInRequired("signed out")
            await self.refresh_access()
        except SignInRequired:
            self._signed_in.clear()
            self._set_status("sign_in_required", "Sign-in required")
            raise

    def signed_out(self) -> None:
        self._need_sign_in = True
        self.api.access_token = None
        self._signed_in.clear()
        self._set_status("sign_in_required", "Sign-in required")

    async def call(self, fn: Callable[[*Ts], Awaitable[T]], *args: *Ts) -> T:
        """An API call with one refresh-and-retry on 401 (used by the outbox sender too)."""
        await self.ensure_token()
        try:
            return await fn(*args)
        except ApiError as exc:
            if exc.status != 401:
                raise
        try:
            await self.refresh_access()
        except SignInRequired:
            self.signed_out()
            raise
        return await fn(*args)
