"""Passwords (scrypt) and opaque bearer tokens (stored as SHA-256 hashes); throttling is in
:mod:`server.throttle`."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request

from .batch import Batcher
from .errors import RequestRejected
from .storage import NewSession, Rotated, Storage, TokenInfo

SUCCESSOR_SECRET = "refresh_successor"  # derives a spent refresh token's successor

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # 16 MiB of memory per hash


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=32,
            maxmem=256 * 1024 * 1024,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


_DUMMY_HASH = hash_password(secrets.token_hex(8))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class Issued:
    """A token pair handed to a client: at sign-in, or by a refresh."""

    access: str
    access_expires_at: int
    refresh: str
    refresh_expires_at: int
    session: str
    username: str


def _derive(secret: bytes, purpose: bytes, session: str, generation: int) -> str:
    """A token's secret part: HMAC-SHA256 of the session and generation under a server secret,
    so the server can recompute any generation's token (a retry gets the same one; an older
    one is recognised) without ever storing a token in clear."""
    message = b"%s\n%s\n%d" % (purpose, session.encode(), generation)
    mac = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


MAX_GENERATIONS_CHECKED = 10_000  # an older generation is recognised this far back


def session_of(refresh_token: str) -> str:
    """The session id a refresh token names (``<session>.<secret part>``; "" for an older one)."""
    head, dot, _ = refresh_token.partition(".")
    return head if dot and 0 < len(head) <= 32 else ""


class Tokens:
    """Issues, rotates, checks and revokes tokens (docs/architecture.md §4.9).

    Refresh tokens rotate: each refresh spends the token and answers the next generation's,
    derived from the session and generation with a server secret, so a retry within ``grace_s``
    gets the very same pair back, and an older generation presented again is recognised as
    the session's (and ends it) while a token merely naming the session is not. Checked access
    tokens are remembered for ``recheck_s`` only, so a revocation made elsewhere (another
    instance, ``concord-server user revoke-sessions``) holds within that time; one made here
    holds at once (:meth:`revoke` forgets them and tells ``on_revoke``).
    """

    def __init__(
        self,
        storage: Storage,
        access_ttl_s: float,
        refresh_ttl_s: float,
        *,
        grace_s: float = 30.0,
        recheck_s: float = 10.0,
    ) -> None:
        self.storage = storage
        self.access_ttl_ms = int(access_ttl_s * 1000)
        self.refresh_ttl_ms = int(refresh_ttl_s * 1000)
        self.grace_ms = int(min(grace_s, 30.0) * 1000)
        self.recheck_s = recheck_s
        self.on_revoke: list[Callable[[int | None, str | None], None]] = []
        self._cache: dict[str, tuple[TokenInfo, float]] = {}
        self._live: dict[str, float] = {}  # session -> when it was last read as live
        self._revocations = 0  # a read that spans one must not be cached (it may predate it)
        # The streams whose heartbeats are due together ask together: one read (§4.7).
        self._live_reads: Batcher[str, bool] = Batcher(self._read_live, False)
        self._secret: bytes | None = None

    async def _successor_secret(self) -> bytes:
        if self._secret is None:
            self._secret = await self.storage.server_secret(SUCCESSOR_SECRET)
        return self._secret

    def _pair(self, access: str, refresh: str, now: int) -> NewSession:
        return NewSession(
            refresh_hash=token_hash(refresh),
            refresh_expires_at=now + self.refresh_ttl_ms,
            access_hash=token_hash(access),
            access_expires_at=now + self.access_ttl_ms,
        )

    def _refresh_token(self, secret: bytes, session: str, generation: int) -> str:
        return f"{session}.{_derive(secret, b'refresh', session, generation)}"

    async def sign_in(self, user_id: int, username: str) -> Issued:
        """A new session with its first pair (generation 0)."""
        secret = await self._successor_secret()  # read once; the tokens' clock starts after
        now = now_ms()
        session = secrets.token_urlsafe(12)
        access = secrets.token_urlsafe(32)
        refresh = self._refresh_token(secret, session, 0)
        pair = self._pair(access, refresh, now)
        await self.storage.start_session(session, user_id, pair, now)
        return Issued(
            access, pair.access_expires_at, refresh, pair.refresh_expires_at, session, username
        )

    async def refresh(self, spent: str) -> tuple[Rotated, Issued | None]:
        """Spend ``spent``: its successor pair, or None with why (a reuse has revoked)."""
        secret = await self._successor_secret()
        now = now_ms()
        made: dict[str, tuple[str, str]] = {}

        def successor(session: str, generation: int) -> NewSession:
            access = _derive(secret, b"access", session, generation)
            refresh = self._refresh_token(secret, session, generation)
            made["pair"] = (access, refresh)
            return self._pair(access, refresh, now)

        hint = session_of(spent)
        rotation = await self.storage.rotate_refresh(
            token_hash(spent), hint, successor, now, self.grace_ms
        )
        outcome = rotation.outcome
        if outcome is Rotated.OLDER:  # reuse of an older generation, or a forgery naming one
            older = range(
                max(0, rotation.generation - MAX_GENERATIONS_CHECKED), rotation.generation
            )
            if any(
                hmac.compare_digest(self._refresh_token(secret, rotation.session, g), spent)
                for g in older
            ):
                await self.storage.revoke_sessions(rotation.user_id, rotation.session, now)
                outcome = Rotated.REUSED
            else:
                outcome = Rotated.INVALID  # knowing a session's id is not enough to end it
        if outcome is Rotated.REUSED:
            self._revoked(None, rotation.session)
        if rotation.user is None or "pair" not in made:
            return outcome, None
        access, refresh = made["pair"]
        user = rotation.user
        issued = Issued(
            access,
            user.expires_at,
            refresh,
            rotation.refresh_expires_at,
            rotation.session,
            user.username,
        )
        return outcome, issued

    async def revoke(self, user_id: int, session: str | None) -> int:
        """End ``session`` of the user (None: all of them); how many live ones ended."""
        ended = await self.storage.revoke_sessions(user_id, session, now_ms())
        self._revoked(user_id, session)
        return ended

    def _revoked(self, user_id: int | None, session: str | None) -> None:
        self._revocations += 1
        if session is None:
            self._live.clear()
        else:
            self._live.pop(session, None)
        for key, (info, _) in list(self._cache.items()):
            if (session is not None and info.session == session) or (
                session is None and info.user_id == user_id
            ):
                del self._cache[key]
        for listener in self.on_revoke:
            listener(user_id, session)

    async def session_live(self, session: str) -> bool:
        """Whether ``session`` still stands, read at most every ``recheck_s`` (open streams
        ask at each heartbeat, so a revocation made elsewhere ends them too)."""
        if not session:
            return True
        clock = time.monotonic()
        cached = self._live.get(session)
        if cached is not None and clock - cached < self.recheck_s:
            return True
        revocations = self._revocations
        live = await self._live_reads.get(session)
        if revocations != self._revocations:
            return live  # a revocation here meanwhile: the read may predate it, keep nothing
        if live:
            if len(self._live) > 10_000:
                self._live.clear()
            self._live[session] = clock
        else:
            self._live.pop(session, None)
        return live

    async def _read_live(self, sessions: list[str]) -> dict[str, bool]:
        return dict.fromkeys(await self.storage.sessions_live(sessions, now_ms()), True)

    async def check_access(self, token: str) -> TokenInfo | None:
        key = token_hash(token)
        now = now_ms()
        clock = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and clock - cached[1] < self.recheck_s:
            info: TokenInfo | None = cached[0]
        else:
            revocations = self._revocations
            info = await self.storage.access_info(key, now)
            if info is None:
                self._cache.pop(key, None)
            elif revocations != self._revocations:
                pass  # a revocation here meanwhile: the read may predate it, keep nothing
            else:
                if len(self._cache) > 10_000:
                    self._cache.clear()  # a cache only: costs a read per token, forgets no limit
                self._cache[key] = (info, clock)
        if info is None or info.expires_at <= now:
            return None
        return info

    async def authenticate(self, request: Request) -> TokenInfo:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        challenge = {"WWW-Authenticate": 'Bearer realm="concord"'}
        if scheme.lower() != "bearer" or not token.strip():
            raise RequestRejected(
                401, "unauthorized", "a bearer token is required", headers=challenge
            )
        info = await self.check_access(token.strip())
        if info is None:
            raise RequestRejected(
                401,
                "invalid_token",
                "the access token is unknown, expired or revoked",
                headers={"WWW-Authenticate": 'Bearer realm="concord", error="invalid_token"'},
            )
        return info


async def check_password(storage: Storage, username: str, password: str) -> int | None:
    """The user id when the password matches; hashing runs in a thread (it takes ~50 ms)."""
    creds = await storage.user_credentials(username)
    stored = creds[1] if creds else _DUMMY_HASH
    ok = await asyncio.to_thread(verify_password, password, stored)
    return creds[0] if (ok and creds) else None
