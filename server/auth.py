"""Passwords (scrypt) and opaque bearer tokens (stored as SHA-256 hashes); throttling is in
:mod:`server.throttle`."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import time

from starlette.requests import Request

from .errors import RequestRejected
from .storage import Storage, TokenInfo

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


class Tokens:
    """Issues and checks tokens; remembers recently checked access tokens to spare the database."""

    def __init__(self, storage: Storage, access_ttl_s: float, refresh_ttl_s: float) -> None:
        self.storage = storage
        self.access_ttl_ms = int(access_ttl_s * 1000)
        self.refresh_ttl_ms = int(refresh_ttl_s * 1000)
        self._cache: dict[str, TokenInfo] = {}

    async def issue(self, user_id: int, kind: str) -> tuple[str, int]:
        token = secrets.token_urlsafe(32)
        ttl = self.access_ttl_ms if kind == "access" else self.refresh_ttl_ms
        expires_at = now_ms() + ttl
        await self.storage.put_token(token_hash(token), user_id, kind, expires_at)
        return token, expires_at

    async def check(self, token: str, kind: str) -> TokenInfo | None:
        key = token_hash(token)
        now = now_ms()
        info = self._cache.get(key) if kind == "access" else None
        if info is None:
            info = await self.storage.token_info(key, kind, now)
            if info is not None and kind == "access":
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[key] = info
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
        info = await self.check(token.strip(), "access")
        if info is None:
            raise RequestRejected(
                401,
                "invalid_token",
                "the access token is unknown or expired",
                headers={"WWW-Authenticate": 'Bearer realm="concord", error="invalid_token"'},
            )
        return info


async def check_password(storage: Storage, username: str, password: str) -> int | None:
    """The user id when the password matches; hashing runs in a thread (it takes ~50 ms)."""
    creds = await storage.user_credentials(username)
    stored = creds[1] if creds else _DUMMY_HASH
    ok = await asyncio.to_thread(verify_password, password, stored)
    return creds[0] if (ok and creds) else None
