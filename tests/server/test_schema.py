"""Schemathesis against a live server: the OpenAPI description (``GET openapi.json``) is the
behaviour. Every operation but the endless ``GET events`` (bounded reads of its own in
``test_streams.py``) gets positive and negative examples, and every response passes every
check schemathesis has: a request the schema calls valid is accepted, one it calls invalid is
refused with a 4xx, and each answer has a documented status, media type and body.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.checks import CHECKS
from schemathesis.openapi import from_dict
from starlette.routing import Route

from core import protocol as p
from server import openapi
from server.app import ROUTES
from tests.support.live_server import LiveServer
from tests.support.schema_auth import (
    ALL_CHECKS,
    fresh_idempotency_key,
    prepare,
    real_token,
    schema_server,
)
from tests.support.server_harness import Harness, assert_error
from tests.support.sse import SSEStream

# The built-in checks of 4.32; a renamed or dropped one fails the first test below.
EXPECTED_CHECKS = {
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "positive_data_acceptance",
    "negative_data_rejection",
    "missing_required_header",
    "ignored_auth",
    "unsupported_method",
    "allow_header_conformance",
    "object_level_authorization",
    "use_after_free",
    "ensure_resource_availability",
}
STREAM = p.API_PREFIX + "/events"


# The description as the server serves it (``openapi.endpoint`` encodes ``build()``; the first
# test checks that). Built at import, so that pytest gets one test per operation; schemathesis's
# lazy ``from_fixture`` loader does not run under pytest 9 (it sets ``Function._nodeid``).
schema = from_dict(openapi.build()).exclude(path=STREAM)
prepare(schema)  # the bearer auth; the 410 of a cursor whose history is gone
TOKEN: dict[str, str] = {}  # alice's access token on the module's server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One live server for the module, signed in as alice (``TOKEN``)."""
    with schema_server(tmp_path_factory.mktemp("schema-server"), TOKEN) as live:
        yield live


def test_the_served_description_is_the_one_tested(server: LiveServer) -> None:
    served = httpx.get(server.url + p.API_PREFIX + "/openapi.json")
    assert served.status_code == 200
    doc = served.json()
    assert doc == json.loads(json.dumps(openapi.build()))
    # Every route is described, so a new endpoint is in the test below too.
    routed = {
        (method.lower(), route.path)
        for route in ROUTES
        if isinstance(route, Route) and route.path != p.API_PREFIX + "/openapi.json"
        for method in route.methods or ()
        if method != "HEAD"
    }
    described = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert routed == described
    names = set(CHECKS.get_all_names())
    assert EXPECTED_CHECKS <= names, EXPECTED_CHECKS - names  # every check we rely on still runs


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,  # the same examples on every run: a failure here is reproducible
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_every_operation_matches_its_schema(case: Case, server: LiveServer) -> None:
    assert case.path != STREAM
    real_token(case, server, TOKEN)
    fresh_idempotency_key(case)
    case.call_and_validate(base_url=server.url, checks=ALL_CHECKS, timeout=20)


# --- the disagreements schemathesis found (issue 12), each pinned down ---------------------------


async def test_whole_number_floats_are_integers(srv: Harness) -> None:
    """The server gave way: JSON Schema's ``integer`` admits ``97481.0``."""
    conv = (await srv.create("alice"))["conversation"]
    r = await srv.request(
        "alice", "PATCH", f"/conversations/{conv['id']}", json={"base_version": 1.0, "pinned": True}
    )
    assert r.status_code == 200, r.text
    assert r.json()["conversation"]["version"] == 2
    r = await srv.request(
        "alice", "PATCH", f"/conversations/{conv['id']}", json={"base_version": 1e0, "title": "x"}
    )
    assert r.status_code == 409, r.text  # read as 1: stale, not malformed
    assert r.json()["error"]["code"] == "version_conflict"
    r = await srv.post("alice", f"/conversations/{conv['id']}/read", json={"seq": 0.0})
    assert r.status_code == 200, r.text
    for wrong in (1.5, "2", 1e300, True):
        r = await srv.request(
            "alice",
            "PATCH",
            f"/conversations/{conv['id']}",
            json={"base_version": wrong, "pinned": False},
        )
        assert_error(r, 422, "invalid_request")


async def test_an_empty_since_is_no_cursor(srv: Harness) -> None:
    """The server gave way: a fresh ``EventSource``'s ``lastEventId`` is ``""``."""
    conv = (await srv.create("alice"))["conversation"]
    await srv.send("alice", conv["id"])
    empty = await srv.get("alice", "/changes", params={"since": ""})
    zero = await srv.get("alice", "/changes", params={"since": "0"})
    assert empty.status_code == zero.status_code == 200
    assert empty.json() == zero.json() and len(empty.json()["changes"]) == 2
    r = await srv.stream_response("alice", since="")
    assert r.status_code == 200
    s = SSEStream(r)
    srv.streams.append(s)
    hello = await s.expect("hello")
    assert hello.json()["resumed"] is False  # live from the head, as with no cursor at all
    assert hello.id == f"{srv.epoch}:{hello.json()['head']}"


async def test_every_query_bound_in_the_description_is_the_servers(srv: Harness) -> None:
    """The schema gave way: each integer parameter says the bounds the server checks."""
    doc = (await srv.client.get("/openapi.json")).json()
    cid = (await srv.create("alice"))["conversation"]["id"]
    checked = 0
    for path, ops in doc["paths"].items():
        op = ops.get("get")
        if op is None or path.endswith("/events"):
            continue
        url = path.removeprefix(p.API_PREFIX).replace("{conversation_id}", cid)
        base = {"q": "hello"} if path.endswith("/search") else {}
        for param in op.get("parameters", []):
            schema = param["schema"]
            if schema.get("type") != "integer":
                continue
            lo, hi, name = schema["minimum"], schema["maximum"], param["name"]
            for value, ok in ((lo, True), (hi, True), (lo - 1, False), (hi + 1, False)):
                r = await srv.get("alice", url, params={**base, name: str(value)})
                if ok:
                    assert r.status_code == 200, (path, name, value, r.text)
                else:
                    assert_error(r, 400, "invalid_parameter")
                checked += 1
    assert checked >= 4 * 6  # changes, snapshot, messages (2), search (2)


async def test_what_no_schema_can_know_has_a_status_it_allows(srv: Harness) -> None:
    """A PATCH with no field is invalid by the schema (``anyOf``) and refused; a member with no
    account is valid by it and gets ``409 unknown_user`` (a conflict with the server's state)."""
    doc = (await srv.client.get("/openapi.json")).json()
    patch = doc["components"]["schemas"]["ConversationPatch"]
    assert {"required": ["pinned"]} in patch["anyOf"]
    conv = (await srv.create("alice"))["conversation"]
    r = await srv.patch("alice", conv["id"], base_version=1)
    assert_error(r, 422, "invalid_request")
    r = await srv.patch("alice", conv["id"], base_version=1, members=["bob", "nobody"])
    assert_error(r, 409, "unknown_user")
    r = await srv.post("alice", "/conversations", json={"id": str(uuid.uuid4()), "title": "  "})
    assert_error(r, 422, "invalid_request")
    assert "pattern" in doc["components"]["schemas"]["ConversationCreate"]["properties"]["title"]


async def test_the_longest_valid_message_is_accepted(srv: Harness) -> None:
    """``maxLength`` of a body is 65,536: such a request is not mistaken for an oversized head
    (its last packet arrives after the head, and is body, not head)."""
    cid = (await srv.create("alice"))["conversation"]["id"]
    body = "x" * p.MAX_BODY_BYTES
    sent = await srv.send("alice", cid, body=body)
    assert sent["message"]["body"] == body


async def test_an_id_means_the_same_to_the_schema_and_the_server(srv: Harness) -> None:
    """Python's ``$`` also matches before a final newline; JSON Schema's does not: an id with
    one is invalid by the schema, so the server refuses it too (its exact length)."""
    r = await srv.post("alice", "/conversations", json={"id": f"{uuid.uuid4()}\n", "title": "t"})
    assert_error(r, 422, "invalid_request")
    assert await srv.head("alice") == 0
