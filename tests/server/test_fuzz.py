"""Random JSON and bytes at the write endpoints: the answer is never a 5xx, and every error is
a well-formed ``{"error": {"code", "message"}}``."""

from __future__ import annotations

import json
import os
import uuid

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.server_harness import API, MakeServer, error_of

EXAMPLES = int(os.environ.get("CONCORD_FUZZ_EXAMPLES", "150"))  # more for a longer hunt
FIELDS = [
    "id",
    "title",
    "members",
    "body",
    "seq",
    "base_version",
    "pinned",
    "username",
    "password",
    "refresh_token",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.uuids().map(str)
    | st.sampled_from(["alice", "bob", "carol", "nobody", "", " ", "\u0000", "é" * 201])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
# Objects that look like our requests, so the fuzzing gets past the first schema check.
request_like = st.dictionaries(
    st.sampled_from(FIELDS) | st.text(max_size=8), json_values, max_size=5
) | st.fixed_dictionaries(
    {"id": st.uuids().map(str)},
    optional={
        "title": st.text(max_size=210),
        "body": st.text(max_size=300),
        "members": st.lists(st.sampled_from(["alice", "bob", "carol", "x y", ""]), max_size=4),
        "seq": st.integers(min_value=-5, max_value=2**64),
        "base_version": st.integers(min_value=-5, max_value=2**64),
        "pinned": st.booleans(),
    },
)
payloads = (
    st.binary(max_size=300)
    | json_values.map(lambda v: json.dumps(v).encode())
    | request_like.map(lambda v: json.dumps(v).encode())
    | request_like.map(lambda v: json.dumps(v, ensure_ascii=False).encode())
)


async def test_write_endpoints_never_fail_with_5xx(make_server: MakeServer) -> None:
    h = await make_server(login_failures_per_minute=3)
    mine = (await h.create("alice", members=["bob"]))["conversation"]["id"]
    theirs = (await h.create("carol"))["conversation"]["id"]
    headers = {**h.users["alice"].auth, "Content-Type": "application/json"}
    conv_ids = st.sampled_from([mine, theirs, str(uuid.uuid4()), "not-a-uuid", mine.upper()])
    targets = st.one_of(
        st.just(("POST", "/conversations")),
        conv_ids.map(lambda c: ("PATCH", f"/conversations/{c}")),
        conv_ids.map(lambda c: ("DELETE", f"/conversations/{c}")),
        conv_ids.map(lambda c: ("POST", f"/conversations/{c}/messages")),
        conv_ids.map(lambda c: ("POST", f"/conversations/{c}/read")),
        st.sampled_from([("POST", "/auth/token"), ("POST", "/auth/refresh")]),
    )
    seen: dict[int, int] = {}

    with httpx.Client(base_url=h.thread.url + API, timeout=10) as client:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(target=targets, payload=payloads)
        def check(target: tuple[str, str], payload: bytes) -> None:
            method, path = target
            r = client.request(method, path, content=payload, headers=headers)
            seen[r.status_code] = seen.get(r.status_code, 0) + 1
            assert r.status_code < 500, (method, path, payload[:200], r.text[:300])
            if r.status_code >= 400:
                got = error_of(r)
                assert isinstance(got, tuple) and got[0] == r.status_code, (payload[:200], got)

        check()

    assert sum(seen.values()) >= min(EXAMPLES, 100)
    assert any(400 <= code < 500 for code in seen)
    # The server is still healthy and consistent.
    r = await h.get("alice", "/changes", params={"since": "0", "limit": "500"})
    assert r.status_code == 200
    seqs = [c["seq"] for c in r.json()["changes"]]
    assert seqs == list(range(1, len(seqs) + 1))
    assert (await h.client.get("/health")).status_code == 200
