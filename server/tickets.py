"""Stream tickets: the browser's credential for ``GET events?ticket=`` (docs/architecture.md §4.5).

An ``EventSource`` cannot send an ``Authorization`` header, so a page trades its bearer token
for a ticket (``POST auth/stream-ticket``) and puts it in the stream's URL. A ticket is stateless
and signed (HMAC-SHA256 with a per-deployment secret kept in the database): it names the user,
its session (revoking the session ends it), and an expiry of a few minutes, never later than the
token that asked for it. The browser's own reconnections reuse it until it expires. It grants
reading the caller's own feed and nothing else: every other endpoint reads only the bearer header.

URLs end up in access logs: :func:`scrub_access_log` rewrites ``ticket=`` out of uvicorn's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import secrets

import msgspec

from .storage import TokenInfo

SECRET_NAME = "stream_ticket"
_CONTEXT = b"concord stream ticket v1\n"
_MAX_LEN = 1024
_TICKET_PARAM = re.compile(r"([?&]ticket=)[^&#\s\"]*")


class _Claims(msgspec.Struct, array_like=True, frozen=True):
    user_id: int
    username: str
    session: str  # the session (refresh-token family) that asked; "" for a pre-session token
    expires_at: int  # ms since the epoch


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class StreamTickets:
    """Issues and verifies tickets with one secret (the same on every instance and restart)."""

    def __init__(self, secret: bytes, ttl_s: float = 300.0) -> None:
        if len(secret) < 16:
            raise ValueError("the ticket secret must have at least 16 bytes")
        self._secret = secret
        self.ttl_ms = int(ttl_s * 1000)

    @classmethod
    def ephemeral(cls) -> StreamTickets:
        """A random secret: what an app has before its storage opened (no ticket outlives it)."""
        return cls(secrets.token_bytes(32))

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, _CONTEXT + payload.encode(), hashlib.sha256).digest())

    def issue(self, user: TokenInfo, now_ms: int) -> tuple[str, int]:
        """A ticket for ``user``'s feed and its expiry (ms), which never passes the token's;
        it names the token's session, so that revoking the session ends it too."""
        expires_at = min(now_ms + self.ttl_ms, user.expires_at)
        payload = _b64(
            msgspec.json.encode(_Claims(user.user_id, user.username, user.session, expires_at))
        )
        return f"{payload}.{self._mac(payload)}", expires_at

    def verify(self, ticket: str, now_ms: int) -> TokenInfo | None:
        """The ticket's user (with the ticket's expiry), or None: forged, malformed, expired."""
        if len(ticket) > _MAX_LEN or ticket.count(".") != 1:
            return None
        payload, mac = ticket.split(".")
        if not hmac.compare_digest(mac.encode("ascii", "replace"), self._mac(payload).encode()):
            return None
        try:
            claims = msgspec.json.decode(_unb64(payload), type=_Claims)
        except (ValueError, binascii.Error, msgspec.DecodeError):
            return None
        if claims.expires_at <= now_ms:
            return None
        return TokenInfo(
            user_id=claims.user_id,
            username=claims.username,
            expires_at=claims.expires_at,
            session=claims.session,
        )


class _ScrubTickets(logging.Filter):
    """Rewrites ``ticket=<value>`` in uvicorn's access-log lines to ``ticket=[redacted]``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(
            isinstance(a, str) and "ticket=" in a for a in record.args
        ):
            record.args = tuple(
                _TICKET_PARAM.sub(r"\1[redacted]", a) if isinstance(a, str) else a
                for a in record.args
            )
        if isinstance(record.msg, str) and "ticket=" in record.msg:
            record.msg = _TICKET_PARAM.sub(r"\1[redacted]", record.msg)
        return True


_SCRUBBER = _ScrubTickets()


def scrub_access_log() -> None:
    """Install the ticket scrubber on uvicorn's access logger (idempotent)."""
    logging.getLogger("uvicorn.access").addFilter(_SCRUBBER)


def redact(text: str) -> str:
    """``text`` with any ``ticket=`` query value replaced (for our own log lines)."""
    return _TICKET_PARAM.sub(r"\1[redacted]", text)


__all__ = ["SECRET_NAME", "StreamTickets", "redact", "scrub_access_log"]
