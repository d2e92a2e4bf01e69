"""Every bad input gets the right 4xx with ``{"error": {"code", "message"}}``, never a 500."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

from core import protocol as p
from server import __version__
from tests.support.server_harness import API, Harness, error_of

CT_JSON = {"Content-Type": "application/json"}
NIL = "00000000-0000-4000-8000-000000000000"


Case = tuple[str, str, Any, int, str]  # method, path, raw body or JSON, status, code


async def run_cases(h: Harness, user: str | None, cases: list[Case]) -> None:
    failures = []
    for method, path, body, status, code in cases:
        if isinstance(body, bytes | bytearray):
            kwargs: dict[str, Any] = {"content": bytes(body), "headers": CT_JSON}
        elif body is None:
            kwargs = {}
        else:
            kwargs = {"content": json.dumps(body).encode(), "headers": CT_JSON}
        r = await h.request(user, method, path, **kwargs)
        got = error_of(r)
        if got != (status, code):
            failures.append(f"{method} {path} {str(body)[:60]!r}: want {status} {code}, got {got}")
    assert not failures, "\n".join(failures)


def new_id() -> str:
    return str(uuid.uuid4())


async def test_malformed_and_mistyped_bodies(srv: Harness) -> None:
    cid = (await srv.create("alice"))["conversation"]["id"]
    conv, msgs, read = (
        "/conversations",
        f"/conversations/{cid}/messages",
        f"/conversations/{cid}/read",
    )
    patch = f"/conversations/{cid}"
    cases: list[Case] = []
    for path, method in [(conv, "POST"), (msgs, "POST"), (read, "POST"), (patch, "PATCH")]:
        for raw in [
            b"",
            b"{",
            b"not json",
            b'{"a":1,}',
            b"\xff\xfe\x00",
            b"{}garbage",
            b"\x00",
            b'{"id": "\xff"}',  # not UTF-8 inside a string
            b'{"zzz": 1, "id": "\xed\xa0\x80"}',  # a schema error first, then bad UTF-8
            b"[" * 100_000,  # deeper than any parser recurses
            b"[" * 100_000 + b"]" * 100_000,
        ]:
            cases.append((method, path, raw, 400, "invalid_json"))
        for wrong in [None, [], "str", 1, True]:
            cases.append((method, path, json.dumps(wrong).encode(), 422, "invalid_request"))
    cases += [
        # wrong types
        ("POST", conv, {"id": 5, "title": "t"}, 422, "invalid_request"),
        ("POST", conv, {"id": new_id(), "title": 5}, 422, "invalid_request"),
        ("POST", conv, {"id": new_id(), "title": "t", "members": "bob"}, 422, "invalid_request"),
        ("POST", conv, {"id": new_id(), "title": "t", "members": [1]}, 422, "invalid_request"),
        ("POST", conv, {"id": new_id(), "title": None}, 422, "invalid_request"),
        ("POST", msgs, {"id": new_id(), "body": 5}, 422, "invalid_request"),
        ("POST", msgs, {"id": new_id(), "body": ["x"]}, 422, "invalid_request"),
        ("POST", read, {"seq": "1"}, 422, "invalid_request"),
        ("POST", read, {"seq": 1.5}, 422, "invalid_request"),
        ("POST", read, {"seq": -1}, 422, "invalid_request"),
        ("POST", read, {"seq": None}, 422, "invalid_request"),
        ("PATCH", patch, {"base_version": "1", "title": "t"}, 422, "invalid_request"),
        ("PATCH", patch, {"base_version": 0, "title": "t"}, 422, "invalid_request"),
        ("PATCH", patch, {"base_version": 1, "pinned": "yes"}, 422, "invalid_request"),
        ("PATCH", patch, {"base_version": 1, "title": None}, 422, "invalid_request"),
        ("PATCH", patch, {"base_version": 1, "members": None}, 422, "invalid_request"),
        # missing fields
        ("POST", conv, {"title": "t"}, 422, "invalid_request"),
        ("POST", conv, {"id": new_id()}, 422, "invalid_request"),
        ("POST", msgs, {"body": "hi"}, 422, "invalid_request"),
        ("POST", read, {}, 422, "invalid_request"),
        ("PATCH", patch, {"title": "t"}, 422, "invalid_request"),
        ("PATCH", patch, {"base_version": 1}, 422, "invalid_request"),  # nothing to change
        # unknown fields
        ("POST", conv, {"id": new_id(), "title": "t", "admin": True}, 422, "invalid_request"),
        ("POST", msgs, {"id": new_id(), "body": "x", "author": "bob"}, 422, "invalid_request"),
        ("POST", read, {"seq": 1, "all": True}, 422, "invalid_request"),
        ("PATCH", patch, {"base_version": 1, "creator": "bob"}, 422, "invalid_request"),
        # ids and names
        ("POST", conv, {"id": "not-a-uuid", "title": "t"}, 422, "invalid_request"),
        ("POST", conv, {"id": NIL + "0", "title": "t"}, 422, "invalid_request"),
        ("POST", msgs, {"id": "123", "body": "x"}, 422, "invalid_request"),
        (
            "POST",
            conv,
            {"id": new_id(), "title": "t", "members": ["bad name"]},
            422,
            "invalid_request",
        ),
        ("POST", conv, {"id": new_id(), "title": "t", "members": [""]}, 422, "invalid_request"),
        (
            "POST",
            conv,
            {"id": new_id(), "title": "t", "members": ["a"] * 1001},
            422,
            "invalid_request",
        ),
        (
            "POST",
            conv,
            {"id": new_id(), "title": "t", "x": [[[[[]]]]] * 1000},
            422,
            "invalid_request",
        ),
        # auth bodies
        ("POST", "/auth/token", {"username": "", "password": "x"}, 422, "invalid_request"),
        ("POST", "/auth/token", {"username": "alice"}, 422, "invalid_request"),
        ("POST", "/auth/token", {"username": "alice", "password": 1}, 422, "invalid_request"),
        ("POST", "/auth/token", b"{", 400, "invalid_json"),
        ("POST", "/auth/refresh", {}, 422, "invalid_request"),
        ("POST", "/auth/refresh", {"refresh_token": ""}, 422, "invalid_request"),
        ("POST", "/auth/refresh", b"", 400, "invalid_json"),
    ]
    await run_cases(srv, "alice", cases)
    # Nothing of that was written.
    assert await srv.head("alice") == 1


async def test_titles_and_bodies_have_limits(srv: Harness) -> None:
    cid = (await srv.create("alice"))["conversation"]["id"]
    conv, msgs = "/conversations", f"/conversations/{cid}/messages"
    max_body = p.MAX_BODY_BYTES
    cases: list[Case] = [
        ("POST", conv, {"id": new_id(), "title": "x" * 201}, 422, "invalid_request"),
        ("POST", conv, {"id": new_id(), "title": "é" * 201}, 422, "invalid_request"),
        ("POST", conv, {"id": new_id(), "title": ""}, 422, "invalid_request"),
        ("POST", conv, {"id": new_id(), "title": "   "}, 422, "invalid_request"),
        ("POST", conv, {"id": new_id(), "title": "\t\n \u3000"}, 422, "invalid_request"),
        ("PATCH", f"{conv}/{cid}", {"base_version": 1, "title": " "}, 422, "invalid_request"),
        ("PATCH", f"{conv}/{cid}", {"base_version": 1, "title": "y" * 201}, 422, "invalid_request"),
        ("POST", msgs, {"id": new_id(), "body": ""}, 422, "invalid_request"),
        ("POST", msgs, {"id": new_id(), "body": " \n\t "}, 422, "invalid_request"),
        ("POST", msgs, {"id": new_id(), "body": "a" * (max_body + 1)}, 422, "invalid_request"),
        # Limits are in UTF-8 bytes: few characters, too many bytes.
        ("POST", msgs, {"id": new_id(), "body": "é" * (max_body // 2 + 1)}, 422, "invalid_request"),
        ("POST", msgs, {"id": new_id(), "body": "€" * (max_body // 3 + 1)}, 422, "invalid_request"),
        (
            "POST",
            msgs,
            {"id": new_id(), "body": "😀" * (max_body // 4 + 1)},
            422,
            "invalid_request",
        ),
    ]
    await run_cases(srv, "alice", cases)
    assert await srv.head("alice") == 1

    # Right at the limits is fine.
    ok = await srv.create("alice", title="t" * 200)
    assert ok["conversation"]["title"] == "t" * 200
    assert (await srv.create("alice", title="  padded  "))["conversation"]["title"] == "padded"
    for body in ["a" * max_body, "€" * (max_body // 3) + "a", "😀" * (max_body // 4)]:
        assert len(body.encode()) == max_body
        msg = await srv.send("alice", cid, body)
        assert msg["message"]["body"] == body


async def test_request_body_over_one_mib_is_413(srv: Harness) -> None:
    cid = (await srv.create("alice"))["conversation"]["id"]
    big = b'{"id":"' + b"x" * (p.MAX_REQUEST_BYTES + 10) + b'"}'

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(big), 64 * 1024):
            yield big[i : i + 64 * 1024]

    for path in ["/conversations", f"/conversations/{cid}/messages", "/auth/token"]:
        # With a Content-Length...
        r = await srv.post("alice", path, content=big, headers=CT_JSON)
        assert error_of(r) == (413, "payload_too_large"), path
        # ...and chunked, without one.
        r = await srv.post("alice", path, content=_aiter(chunks()), headers=CT_JSON)
        assert "content-length" not in r.request.headers
        assert r.request.headers["transfer-encoding"] == "chunked"
        assert error_of(r) == (413, "payload_too_large"), path
    assert await srv.head("alice") == 1
    # The server still serves this client.
    assert (await srv.get("alice", "/conversations")).status_code == 200


async def _aiter(it: Iterator[bytes]):  # type: ignore[no-untyped-def]
    for chunk in it:
        yield chunk


async def test_paths_routes_and_methods(srv: Harness) -> None:
    cid = (await srv.create("alice"))["conversation"]["id"]
    cases: list[Case] = []
    for bad in ["not-a-uuid", "123", NIL + "0", "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz", "%00"]:
        cases += [
            ("GET", f"/conversations/{bad}/messages", None, 404, "not_found"),
            (
                "POST",
                f"/conversations/{bad}/messages",
                {"id": new_id(), "body": "x"},
                404,
                "not_found",
            ),
            ("POST", f"/conversations/{bad}/read", {"seq": 1}, 404, "not_found"),
            ("PATCH", f"/conversations/{bad}", {"base_version": 1, "title": "x"}, 404, "not_found"),
            ("DELETE", f"/conversations/{bad}?base_version=1", None, 404, "not_found"),
        ]
    cases += [
        ("GET", f"/conversations/{NIL}/messages", None, 404, "not_found"),  # valid, unknown
        ("GET", "/nope", None, 404, "not_found"),
        ("GET", "/conversations/x/y/z", None, 404, "not_found"),
        ("GET", "/../health/x", None, 404, "not_found"),
        ("PUT", f"/conversations/{cid}", {"title": "x"}, 405, "method_not_allowed"),
        ("GET", f"/conversations/{cid}", None, 405, "method_not_allowed"),
        ("DELETE", "/conversations", None, 405, "method_not_allowed"),
        ("PUT", "/conversations", None, 405, "method_not_allowed"),
        ("POST", "/snapshot", None, 405, "method_not_allowed"),
        ("POST", "/events", None, 405, "method_not_allowed"),
        ("GET", "/auth/token", None, 405, "method_not_allowed"),
        ("DELETE", "/health", None, 405, "method_not_allowed"),
    ]
    await run_cases(srv, "alice", cases)
    for url in ["/", "/api", "/api/v2/conversations", "/favicon.ico"]:
        r = await srv.client.get(srv.thread.url + url)
        assert error_of(r) == (404, "not_found"), url


async def test_405_lists_every_allowed_method(srv: Harness) -> None:
    cid = (await srv.create("alice"))["conversation"]["id"]
    expected = {
        "/conversations": {"GET", "HEAD", "POST"},
        f"/conversations/{cid}": {"PATCH", "DELETE"},
        f"/conversations/{cid}/messages": {"GET", "HEAD", "POST"},
        "/auth/token": {"POST"},
        "/events": {"GET", "HEAD"},
    }
    for path, allowed in expected.items():
        r = await srv.request("alice", "PUT", path)
        assert r.status_code == 405
        assert {m.strip() for m in r.headers["allow"].split(",")} == allowed, path


async def test_bad_query_parameters(srv: Harness) -> None:
    cid = (await srv.create("alice"))["conversation"]["id"]
    msgs = f"/conversations/{cid}/messages"
    cases: list[Case] = []
    for value in ["abc", "0", "-1", "1e3", "1.5", "501", " 5", "99999999999999999999", "٣"]:
        cases += [
            ("GET", f"{msgs}?limit={value}", None, 400, "invalid_parameter"),
            ("GET", f"/changes?since=0&limit={value}", None, 400, "invalid_parameter"),
        ]
    for value in ["abc", "0", "-1", "1.5", "99999999999999999999"]:
        cases.append(("GET", f"{msgs}?before={value}", None, 400, "invalid_parameter"))
    for value in ["abc", "-1", "201", "2.0"]:
        cases.append(("GET", f"/snapshot?messages={value}", None, 400, "invalid_parameter"))
    for value in ["abc", "0", "-1", "1.5"]:
        cases.append(
            ("DELETE", f"/conversations/{cid}?base_version={value}", None, 400, "invalid_parameter")
        )
    cases += [
        ("DELETE", f"/conversations/{cid}", None, 422, "invalid_request"),  # no base_version
        ("DELETE", f"/conversations/{cid}", b"{", 400, "invalid_json"),
        ("DELETE", f"/conversations/{cid}", {}, 422, "invalid_request"),
        ("DELETE", f"/conversations/{cid}", {"base_version": "1"}, 422, "invalid_request"),
    ]
    await run_cases(srv, "alice", cases)
    assert len((await srv.conversations("alice"))["conversations"]) == 1
    # The limits themselves are accepted.
    for path in [
        f"{msgs}?limit=500",
        f"{msgs}?limit=1",
        "/changes?since=0&limit=500",
        "/snapshot?messages=200",
    ]:
        assert (await srv.get("alice", path)).status_code == 200, path


async def test_errors_without_a_token_are_json_too(srv: Harness) -> None:
    cases: list[Case] = [
        ("GET", "/nope", None, 404, "not_found"),
        ("PUT", "/conversations", None, 405, "method_not_allowed"),
        ("POST", "/conversations", b"{", 401, "unauthorized"),
        ("GET", f"{API}/health", None, 404, "not_found"),  # doubled prefix
    ]
    await run_cases(srv, None, cases)
    r = await srv.client.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "version": __version__, "epoch": srv.epoch}
