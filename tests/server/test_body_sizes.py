"""Message bodies around the size limits, sent over HTTP to a real server (issue 12's probe of a
500 once seen for an ~80 KB body): a body is at most 64 KiB once encoded as UTF-8
(``core.protocol.MAX_BODY_BYTES``) and a request at most 1 MiB (``MAX_REQUEST_BYTES``). Every
size, in ASCII and in 2-, 3- and 4-byte characters, written both as raw UTF-8 and as JSON
escapes, sent and edited, with and without ``Idempotency-Key``, is served or refused with the
JSON error shape (``422 invalid_request`` / ``413 payload_too_large``) — never a 5xx."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from core import protocol as p
from core.http import ApiError, ServerApi
from tests.support.server_harness import Harness, assert_error

KIB64 = p.MAX_BODY_BYTES
# (name, text, ensure_ascii): the body and how its JSON is written.
CASES: list[tuple[str, str, bool]] = [
    ("60 KB ascii", "a" * 60_000, False),
    ("64 KiB ascii", "a" * KIB64, False),
    ("64 KiB + 1 ascii", "a" * (KIB64 + 1), False),
    ("80 KB ascii", "a" * 80_000, False),
    ("1 MB ascii", "a" * 1_000_000, False),  # the request is still under 1 MiB
    ("1.1 MB ascii", "a" * 1_100_000, False),  # the request is over it
    ("64 KiB of 2-byte é", "é" * (KIB64 // 2), False),
    ("64 KiB + 2 of 2-byte é", "é" * (KIB64 // 2 + 1), False),
    ("80 KB of 2-byte é (40,000 chars)", "é" * 40_000, False),
    ("64 KiB of 3-byte € + a", "€" * (KIB64 // 3) + "a", False),
    ("64 KiB + 2 of 3-byte €", "€" * (KIB64 // 3 + 1), False),
    ("64 KiB of 4-byte emoji", "😀" * (KIB64 // 4), False),
    ("64 KiB of 4-byte emoji, JSON-escaped", "😀" * (KIB64 // 4), True),
    ("64 KiB + 4 of 4-byte emoji", "😀" * (KIB64 // 4 + 1), False),
    ("64 KiB + 4 of 4-byte emoji, JSON-escaped", "😀" * (KIB64 // 4 + 1), True),
    ("64 KiB - 1 ascii + é (1 over)", "a" * (KIB64 - 1) + "é", False),
]


def expected(text: str, request_bytes: int) -> tuple[int, str | None]:
    """The answer the limits call for: (status, error code or None for success)."""
    if request_bytes > p.MAX_REQUEST_BYTES:
        return 413, "payload_too_large"
    if len(text.encode("utf-8")) > KIB64:
        return 422, "invalid_request"
    return 0, None


async def call(
    srv: Harness,
    method: str,
    path: str,
    fields: dict[str, Any],
    ascii_: bool = False,
    key: bool | str = False,
    chunked: bool = False,
) -> tuple[httpx.Response, int]:
    """The request, its JSON written by hand (``chunked``: with no Content-Length)."""
    content = json.dumps(fields, ensure_ascii=ascii_).encode()
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Idempotency-Key"] = key if isinstance(key, str) else str(uuid.uuid4())

    async def pieces() -> AsyncIterator[bytes]:
        for at in range(0, len(content), 16384):
            yield content[at : at + 16384]

    body: Any = pieces() if chunked else content
    r = await srv.request("alice", method, path, content=body, headers=headers)
    return r, len(content)


async def test_message_bodies_near_the_limits_are_served_or_refused_never_a_500(
    srv: Harness,
) -> None:
    cid = (await srv.create("alice", members=["bob"]))["conversation"]["id"]
    seen: list[tuple[str, str, int]] = []
    for name, text, ascii_ in CASES:
        for key in (False, True):
            label = f"{name}{' +key' if key else ''}"
            mid = str(uuid.uuid4())
            r, size = await call(
                srv,
                "POST",
                f"/conversations/{cid}/messages",
                {"id": mid, "body": text},
                ascii_,
                key,
            )
            seen.append((label, "send", r.status_code))
            status, code = expected(text, size)
            if code is None:
                assert r.status_code == 201, (label, r.text[:300])
                assert r.json()["message"]["body"] == text
            else:
                assert_error(r, status, code)

            target = (await srv.send("alice", cid, "short"))["message"]
            r, size = await call(
                srv,
                "PATCH",
                f"/conversations/{cid}/messages/{target['id']}",
                {"body": text, "base_version": target["version"]},
                ascii_,
                key,
            )
            seen.append((label, "edit", r.status_code))
            status, code = expected(text, size)
            if code is None:
                assert r.status_code == 200, (label, r.text[:300])
                assert r.json()["message"]["body"] == text
            else:
                assert_error(r, status, code)
    assert not [s for s in seen if s[2] >= 500], seen
    # The largest bodies that were taken travel on through every read path.
    for path in ("/changes?since=0", f"/conversations/{cid}/messages", "/snapshot", "/search?q=a"):
        r = await srv.get("alice", path)
        assert r.status_code == 200, (path, r.text[:300])
    r = await srv.get("bob", "/changes?since=0")
    assert r.status_code == 200
    assert max(len(c["data"].get("message", {}).get("body", "")) for c in r.json()["changes"]) == (
        KIB64
    )


async def test_chunked_bodies_and_retries_of_the_largest_ones(srv: Harness) -> None:
    """No Content-Length (the streaming read's own 1 MiB cut), and the outbox's retries of a
    64 KiB send (the same message id) and edit (the same Idempotency-Key)."""
    cid = (await srv.create("alice"))["conversation"]["id"]
    sends = f"/conversations/{cid}/messages"
    r, _ = await call(
        srv, "POST", sends, {"id": str(uuid.uuid4()), "body": "a" * 80_000}, chunked=True
    )
    assert_error(r, 422, "invalid_request")
    r, _ = await call(
        srv, "POST", sends, {"id": str(uuid.uuid4()), "body": "a" * 1_100_000}, chunked=True
    )
    assert_error(r, 413, "payload_too_large")

    fields = {"id": str(uuid.uuid4()), "body": "é" * (KIB64 // 2)}
    first, _ = await call(srv, "POST", sends, fields, chunked=True)
    again, _ = await call(srv, "POST", sends, fields)
    assert first.status_code == 201, first.text[:300]
    assert again.status_code in (200, 201), again.text[:300]
    assert again.json()["message"] == first.json()["message"]

    edit = f"{sends}/{fields['id']}"
    change = {"body": "😀" * (KIB64 // 4), "base_version": 1}
    key = str(uuid.uuid4())
    first, _ = await call(srv, "PATCH", edit, change, key=key)
    again, _ = await call(srv, "PATCH", edit, change, key=key, chunked=True)
    assert first.status_code == again.status_code == 200, (first.text[:300], again.text[:300])
    assert again.json()["message"] == first.json()["message"]
    assert first.json()["message"]["version"] == 2


class Bearer(httpx.AsyncBaseTransport):
    """The outbox's own HTTP layer (``core.http.ServerApi``) signed in as alice."""

    def __init__(self, token: str) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.token = token

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_the_outbox_s_http_layer_gets_an_api_error_not_a_500(srv: Harness) -> None:
    """What the outbox sends (``ServerApi.send_message`` / ``edit_message`` with an op id) when a
    body past the limit reached it: a plain ``ApiError`` 422 / 413, which it treats as a refusal."""
    cid = (await srv.create("alice"))["conversation"]["id"]
    api = ServerApi(srv.thread.url, transport=Bearer(srv.users["alice"].token or ""))
    try:
        sent = await api.send_message(cid, p.MessageCreate(str(uuid.uuid4()), "a" * KIB64))
        for text, status, code in (
            ("a" * 80_000, 422, "invalid_request"),
            ("é" * 40_000, 422, "invalid_request"),
            ("a" * 1_100_000, 413, "payload_too_large"),
        ):
            with pytest.raises(ApiError) as refused:
                await api.send_message(cid, p.MessageCreate(str(uuid.uuid4()), text))
            assert (refused.value.status, refused.value.code) == (status, code)
            patch = p.MessagePatch(base_version=sent.message.version, body=text)
            with pytest.raises(ApiError) as refused:
                await api.edit_message(cid, sent.message.id, patch, op_id=str(uuid.uuid4()))
            assert (refused.value.status, refused.value.code) == (status, code)
    finally:
        await api.aclose()
