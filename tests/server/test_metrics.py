"""``GET metrics`` (Prometheus text) and ``GET openapi.json``."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.routing import Route

from server.errors import RequestRejected
from server.metrics import scrape_allowed
from tests.support.server_harness import API, Harness, MakeServer, assert_error, event_id
from tests.support.waiting import equals, wait_until


async def test_metrics_count_what_happened(srv: Harness) -> None:
    before = await srv.metrics()
    assert before[("concord_open_streams", ())] == 0
    assert before[("concord_changes_appended_total", ())] == 0
    assert before[("concord_events_delivered_total", ())] == 0
    assert before[("concord_stream_resumes_total", ())] == 0
    assert before[("concord_slow_disconnects_total", ())] == 0

    alice, bob = await srv.stream("alice"), await srv.stream("bob")
    cid = (await srv.create("alice", members=["bob"]))["conversation"]["id"]  # 2 rows
    await srv.send("alice", cid, "one")  # 2 rows
    await srv.send("bob", cid, "two")  # 2 rows
    await srv.create("carol")  # 1 row, nobody listening
    await alice.changes(3)
    await bob.changes(3)
    delivered = 6

    resumed = await srv.stream("alice", last_event_id=event_id(srv, 1))
    await resumed.changes(2)
    delivered += 2
    await srv.stream("alice", last_event_id="abc")
    await srv.stream("bob", last_event_id=f"{srv.epoch + 1}:3")
    await srv.stream("bob", last_event_id=event_id(srv, 99))

    m = await srv.metrics()
    assert m[("concord_open_streams", ())] == 6
    assert m[("concord_changes_appended_total", ())] == 7
    assert m[("concord_events_delivered_total", ())] == delivered
    assert m[("concord_stream_resumes_total", ())] == 1
    resets = {
        dict(labels)["reason"]: value
        for (name, labels), value in m.items()
        if name == "concord_stream_resets_total"
    }
    assert resets == {"invalid_cursor": 1, "epoch_changed": 1, "cursor_ahead": 1}
    assert m[("concord_slow_disconnects_total", ())] == 0

    # Latency per route template (never per raw path: ids would explode the label set).
    def count(method: str, route: str, status: str) -> float:
        key = (("method", method), ("route", route), ("status", status))
        return m.get(("concord_http_request_duration_seconds_count", key), 0.0)

    assert count("POST", f"{API}/conversations", "201") == 2
    assert count("POST", f"{API}/conversations/{{conversation_id}}/messages", "201") == 2
    assert count("GET", f"{API}/events", "200") == 6
    assert count("POST", f"{API}/auth/token", "200") == 3
    assert count("GET", f"{API}/metrics", "200") == 1  # the first scrape, from loopback
    labels = [dict(labels) for (name, labels), _ in m.items() if "duration" in name]
    assert not any(re.search(r"[0-9a-f]{8}-", lab.get("route", "")) for lab in labels)
    buckets = [
        v for (name, lab), v in m.items() if name.endswith("_bucket") and ("le", "+Inf") in lab
    ]
    assert sum(buckets) == sum(
        v for (name, _), v in m.items() if name == "concord_http_request_duration_seconds_count"
    )

    await srv.get("alice", "/no/such/route")
    m = await srv.metrics()
    key = (("method", "GET"), ("route", "unmatched"), ("status", "404"))
    assert m[("concord_http_request_duration_seconds_count", key)] == 1

    for s in srv.streams:
        await s.aclose()

    async def gauge() -> float:
        return await srv.metric("concord_open_streams")

    await wait_until(lambda: equals(gauge(), 0), timeout=3, what="open streams back to 0")


async def test_openapi_lists_every_endpoint(srv: Harness) -> None:
    r = await srv.client.get("/openapi.json")  # public
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    routes = {
        (route.path, method.lower())
        for route in srv.thread.app.routes
        if isinstance(route, Route) and route.path != f"{API}/openapi.json"
        for method in route.methods or ()
        if method != "HEAD"
    }
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert documented == routes
    schemas = doc["components"]["schemas"]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            names = {prm["name"] for prm in op.get("parameters", []) if prm["in"] == "path"}
            assert names == set(re.findall(r"{(\w+)}", path)), (method, path)
            refs = re.findall(r'"#/components/schemas/(\w+)"', str(op).replace("'", '"'))
            assert all(ref in schemas for ref in refs), (method, path, refs)
            public = path.endswith(("/auth/token", "/auth/refresh", "/health"))
            assert ("security" in op) is not public, (method, path)


async def test_metrics_need_the_scrape_token_when_one_is_set(make_server: MakeServer) -> None:
    h = await make_server(metrics_token="scrape-secret")
    assert_error(await h.get(None, "/metrics"), 401, "unauthorized")
    # A user's own access token is not enough: the figures are server-wide.
    r = await h.get("alice", "/metrics")
    assert_error(r, 401, "unauthorized")
    assert r.headers["www-authenticate"].startswith("Bearer")
    wrong = {"Authorization": "Bearer scrape-secreT"}
    assert_error(await h.get(None, "/metrics", headers=wrong), 401, "unauthorized")
    r = await h.get(None, "/metrics", headers={"Authorization": "Bearer scrape-secret"})
    assert r.status_code == 200 and "concord_open_streams" in r.text


async def test_metrics_without_a_token_are_for_loopback_only(srv: Harness) -> None:
    assert (await srv.get(None, "/metrics")).status_code == 200  # the test runs on loopback
    # Through a reverse proxy the peer is loopback but the client is not.
    for header in ("X-Forwarded-For", "Forwarded"):
        r = await srv.get(None, "/metrics", headers={header: "for=203.0.113.9"})
        assert_error(r, 404, "not_found")

    def scrape_from(host: str) -> int:
        scope = {"type": "http", "method": "GET", "headers": [], "client": (host, 40000)}
        try:
            scrape_allowed(Request(scope), None)
        except RequestRejected as exc:
            return exc.status
        return 200

    assert scrape_from("192.0.2.5") == 404
    assert scrape_from("::1") == 200
    assert scrape_from("127.0.0.9") == 200
