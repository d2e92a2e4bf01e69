"""The fault proxy against a real uvicorn/Starlette app (and a raw TCP peer for half-close)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import anyio
import httpx
import pytest
from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from server.runner import ServerThread
from tests.support.faultproxy import FAULT_KINDS, FaultProxy, _RequestLines
from tests.support.waiting import wait_until_sync

BLOB = bytes(range(256)) * 4096  # 1 MiB
APPLIED: list[bytes] = []  # the bodies /apply received (the upstream did the work)


async def json_ep(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True, "items": list(range(200))})


async def changes(request: Request) -> JSONResponse:
    return JSONResponse({"changes": [], "since": request.query_params.get("since")})


async def echo(request: Request) -> Response:
    return Response(await request.body(), media_type="application/octet-stream")


async def apply(request: Request) -> JSONResponse:
    body = await request.body()
    APPLIED.append(body)
    await anyio.sleep(float(request.query_params.get("wait", "0")))  # the work takes this long
    return JSONResponse({"applied": len(APPLIED)})


async def blob(request: Request) -> Response:
    return Response(BLOB, media_type="application/octet-stream")


async def chunks(request: Request) -> StreamingResponse:
    async def gen() -> AsyncIterator[bytes]:
        for i in range(100):
            yield bytes([i]) * (i * 37 % 5000 + 1)

    return StreamingResponse(gen(), media_type="application/octet-stream")


async def events(request: Request) -> EventSourceResponse:
    n, every = (
        int(request.query_params.get("n", "5")),
        float(request.query_params.get("every", "0")),
    )

    async def gen() -> AsyncIterator[dict[str, str]]:
        for i in range(n):
            yield {"id": str(i), "event": "tick", "data": json.dumps({"i": i})}
            if every:
                await anyio.sleep(every)

    return EventSourceResponse(gen(), ping=600)


APP = Starlette(
    routes=[
        Route("/json", json_ep),
        Route("/api/v1/changes", changes),
        Route("/echo", echo, methods=["POST"]),
        Route("/apply", apply, methods=["POST"]),
        Route("/blob", blob),
        Route("/chunks", chunks),
        Route("/events", events),
    ]
)


@pytest.fixture(scope="module")
def upstream() -> Iterator[ServerThread]:
    with ServerThread(APP) as server:
        yield server


@pytest.fixture
def proxy(upstream: ServerThread) -> Iterator[FaultProxy]:
    with FaultProxy(upstream=("127.0.0.1", upstream.port)) as p:
        yield p


def client(**timeouts: float) -> httpx.Client:
    return httpx.Client(timeout=httpx.Timeout(5.0, **timeouts), trust_env=False)


def read_all(s: socket.socket, limit: int = 50_000) -> bytes:
    """recv until EOF (bounded: ``limit`` reads, each under the socket's timeout)."""
    parts = []
    for _ in range(limit):
        if not (data := s.recv(65536)):
            return b"".join(parts)
        parts.append(data)
    raise AssertionError("no EOF")


def no_leaks(p: FaultProxy) -> bool:
    """Wait until the proxy loop runs nothing but its server (and the probe itself)."""
    return wait_until_sync(
        lambda: p._call(lambda: len(asyncio.all_tasks())) == 2,
        "the proxy loop to run only its server",
        timeout=3.0,
    )


def test_pass_mode_is_byte_exact_and_keeps_alive(upstream: ServerThread, proxy: FaultProxy) -> None:
    with client() as direct, client() as via:
        for path in ("/json", "/blob", "/chunks", "/events?n=20"):
            want, got = direct.get(upstream.url + path), via.get(proxy.url + path)
            assert got.status_code == want.status_code == 200
            assert got.headers["content-type"] == want.headers["content-type"]
            assert got.content == want.content, path
        with via.stream("GET", proxy.url + "/events?n=50&every=0.001") as r:
            streamed = b"".join(r.iter_raw())
        assert streamed == direct.get(upstream.url + "/events?n=50").content
        assert via.post(proxy.url + "/echo", content=BLOB).content == BLOB
    stats = proxy.stats
    assert stats.accepted == 1  # one keep-alive connection carried every request
    assert stats.bytes_up > len(BLOB) and stats.bytes_down > 2 * len(BLOB)


async def test_async_sse_stream_through_proxy(proxy: FaultProxy) -> None:
    async with httpx.AsyncClient(timeout=5, trust_env=False) as ac:
        async with ac.stream("GET", proxy.url + "/events?n=10&every=0.01") as r:
            lines = [line async for line in r.aiter_lines()]
    assert [ln for ln in lines if ln.startswith("id:")] == [f"id: {i}" for i in range(10)]


def test_half_close_propagates_both_ways() -> None:
    """Client EOF reaches the upstream, which then answers and closes; the client sees EOF."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(5)
            got = read_all(conn)  # until the client's EOF
            conn.sendall(b"got %d" % len(got))

    peer = threading.Thread(target=serve, daemon=True)
    peer.start()
    with listener, FaultProxy(upstream=listener.getsockname()[:2]) as p:
        with socket.create_connection(("127.0.0.1", p.port), timeout=5) as s:
            s.sendall(b"x" * 300_000)
            s.shutdown(socket.SHUT_WR)
            reply = read_all(s)
        peer.join(5)
    assert reply == b"got 300000"


def test_upstream_close_reaches_client(proxy: FaultProxy) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as s:
        s.sendall(b"GET /json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = read_all(s)
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"]}")


def test_cut_closes_an_open_stream(proxy: FaultProxy) -> None:
    with client() as c, c.stream("GET", proxy.url + "/events?n=400&every=0.02") as r:
        lines = r.iter_lines()
        assert next(lines).startswith("id:")
        assert proxy.cut() == 1
        t0 = time.monotonic()
        with pytest.raises(httpx.TransportError):
            for _ in lines:
                pass
        assert time.monotonic() - t0 < 1.5
    with client() as c, c.stream("GET", proxy.url + "/events?n=400&every=0.02") as r:
        lines = r.iter_lines()
        assert next(lines).startswith("id:")
        assert proxy.cut(rst=False) == 1  # FIN: the chunked body ends early
        with pytest.raises(httpx.RemoteProtocolError):
            for _ in lines:
                pass
    with client() as c:
        assert c.get(proxy.url + "/json").status_code == 200  # new connections still pass
    assert proxy.stats.cut == 2 and proxy.stats.accepted == 3
    assert no_leaks(proxy)


def test_cut_after_ends_a_stream_right_after_the_marked_event(proxy: FaultProxy) -> None:
    proxy.cut_after(b"id: 7\r\n")
    assert proxy.cut_armed
    with client() as c, c.stream("GET", proxy.url + "/events?n=40") as r:  # in one burst
        body = b""
        with pytest.raises(httpx.RemoteProtocolError):  # FIN: the chunked body ends early
            for chunk in r.iter_raw():
                body += chunk
    ids = [line for line in body.split(b"\r\n") if line.startswith(b"id:")]
    assert ids == [b"id: %d" % i for i in range(8)]
    assert body.endswith(b"\r\n\r\n")  # the marked event whole, nothing after it
    assert not proxy.cut_armed and proxy.stats.cut == 1
    with client() as c:  # one-shot: the next stream passes whole
        assert len(c.get(proxy.url + "/events?n=40").text.split("id: ")) == 41
    assert no_leaks(proxy)


def test_refuse(proxy: FaultProxy) -> None:
    proxy.set_mode("refuse")
    with client() as c:
        with pytest.raises(httpx.TransportError):
            c.get(proxy.url + "/json")
        proxy.set_mode("pass")
        assert c.get(proxy.url + "/json").json()["ok"] is True
    assert proxy.stats.refused == 1


def test_blackhole_new_and_existing_connections(proxy: FaultProxy) -> None:
    proxy.set_mode("blackhole")
    with client(read=0.5) as c:
        t0 = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            c.get(proxy.url + "/json")
        assert 0.45 < time.monotonic() - t0 < 2.0
    proxy.set_mode("pass")
    with client(read=0.5) as c, c.stream("GET", proxy.url + "/events?n=400&every=0.02") as r:
        lines = r.iter_lines()
        assert next(lines).startswith("id:")
        proxy.set_mode("blackhole")
        with pytest.raises(httpx.ReadTimeout):
            for _ in lines:
                pass
    proxy.set_mode("pass")
    with client() as c:
        assert c.get(proxy.url + "/json").status_code == 200
    assert proxy.stats.blackholed == 1
    assert no_leaks(proxy)


def test_delay_adds_latency_and_keeps_order(proxy: FaultProxy) -> None:
    with client() as c:
        c.get(proxy.url + "/json")
        proxy.set_mode("delay", delay_s=0.3)
        t0 = time.monotonic()
        assert c.get(proxy.url + "/json").json()["ok"] is True
        assert 0.3 <= time.monotonic() - t0 < 3.0
        proxy.set_mode("delay", delay_s=0.02)
        assert c.get(proxy.url + "/blob").content == BLOB
        assert c.get(proxy.url + "/chunks").content == c.get(proxy.url + "/chunks").content
    assert no_leaks(proxy)


def test_html_answers_new_and_keep_alive_requests(proxy: FaultProxy) -> None:
    with client() as c:
        assert c.get(proxy.url + "/json").status_code == 200
        proxy.set_mode("html")
        r = c.get(proxy.url + "/json")  # on the pooled connection
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert b"<html" in r.content
        assert proxy.stats.accepted == 1
        with client() as fresh:
            assert fresh.get(proxy.url + "/api/v1/changes").headers["content-type"] == (
                "text/html; charset=utf-8"
            )
        proxy.set_mode("pass")
        assert c.get(proxy.url + "/json").json()["ok"] is True
    assert proxy.stats.answered == 2 and proxy.stats.requests["GET /json"] == 2


def test_http_error(proxy: FaultProxy) -> None:
    proxy.set_mode("http_error", status=503)
    with client() as c:
        r = c.get(proxy.url + "/api/v1/changes")
        assert r.status_code == 503 and r.json() == {"error": "injected", "status": 503}
        proxy.set_mode("http_error", status=502, body=b'{"x":1}')
        r = c.post(proxy.url + "/echo", content=b"hello")
        assert r.status_code == 502 and r.json() == {"x": 1}
    assert proxy.stats.requests.total() == 0


def test_drop_answers_applies_the_request_and_resets_the_connection(proxy: FaultProxy) -> None:
    before = len(APPLIED)
    with client() as c:
        assert c.get(proxy.url + "/json").status_code == 200  # a keep-alive connection
        proxy.set_mode("drop_answers")
        with pytest.raises(httpx.TransportError):  # on that connection: no answer
            c.post(proxy.url + "/apply", content=b"one")
        assert c.get(proxy.url + "/json").json()["ok"] is True  # a GET keeps its answer
        with pytest.raises(httpx.TransportError):  # on a new connection too
            c.post(proxy.url + "/apply", content=b"two")
    assert APPLIED[before:] == [b"one", b"two"]  # the upstream got them and did the work
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as s:
        s.sendall(b"POST /apply HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nthree")
        with pytest.raises(ConnectionResetError):  # a reset, not one byte of the answer
            s.recv(65536)
    assert APPLIED[before:] == [b"one", b"two", b"three"]
    stats = proxy.stats
    assert stats.dropped == {"POST /apply": 3} and stats.requests["POST /apply"] == 3
    assert no_leaks(proxy)


def test_drop_answers_goes_by_the_mode_when_the_answer_comes(proxy: FaultProxy) -> None:
    """A request sent in ``pass`` whose answer comes in ``drop_answers`` loses it; ``drop_if``
    chooses the requests; back in ``pass``, answers flow on a new connection."""
    before = len(APPLIED)
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as s:
        s.sendall(b"POST /apply?wait=0.3 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nslow")
        wait_until_sync(lambda: len(APPLIED) > before, "the server to be at work", timeout=3.0)
        proxy.set_mode("drop_answers")
        with pytest.raises(ConnectionResetError):
            s.recv(65536)
    proxy.set_mode("drop_answers", drop_if=lambda line: line == "GET /json")
    with client() as c:
        assert c.post(proxy.url + "/apply", content=b"kept").json()["applied"] == before + 2
        with pytest.raises(httpx.TransportError):
            c.get(proxy.url + "/json")
        proxy.set_mode("pass")
        assert c.get(proxy.url + "/json").json()["ok"] is True
    assert proxy.stats.dropped == {"POST /apply": 1, "GET /json": 1}
    assert no_leaks(proxy)


def test_stats_count_connections_and_request_lines(proxy: FaultProxy) -> None:
    tricky = b"GET /api/v1/changes HTTP/1.1\r\nHost: x\r\n\r\n"  # inside a body: not a request
    with client() as c:
        for since in range(3):
            c.get(proxy.url + "/api/v1/changes", params={"since": since})
        assert c.post(proxy.url + "/echo", content=tricky).content == tricky
        c.get(proxy.url + "/api/v1/changes")
    with client() as c:
        c.get(proxy.url + "/api/v1/changes")
    stats = proxy.stats
    assert stats.accepted == 2
    assert stats.requests == {"GET /api/v1/changes": 5, "POST /echo": 1}


def test_request_line_parser_edge_cases() -> None:
    p = _RequestLines()
    stream = b"POST /a HTTP/1.1\r\nContent-Length: 6\r\n\r\nGET /bGET /c?x=1 HTTP/1.1\r\n\r\n"
    found = [line for byte in range(len(stream)) for line in p.feed(stream[byte : byte + 1])]
    assert found == ["POST /a", "GET /c"] and p.at_start
    p.feed(b"POST /d HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
    assert p.opaque and p.feed(b"GET /e HTTP/1.1\r\n\r\n") == [] and not p.at_start


def test_random_faults_bounded_schedule(proxy: FaultProxy) -> None:
    stop = threading.Event()
    outcomes = {"ok": 0, "err": 0}

    def traffic() -> None:
        with client(read=0.3, connect=0.3) as c:
            for _ in range(2000):
                if stop.is_set():
                    return
                try:
                    c.get(proxy.url + "/json")
                    outcomes["ok"] += 1
                except httpx.HTTPError:
                    outcomes["err"] += 1

    worker = threading.Thread(target=traffic, daemon=True)
    worker.start()
    t0 = time.monotonic()
    kw = {"n": 25, "min_gap_s": 0.01, "max_gap_s": 0.04, "dur_s": (0.01, 0.06)}
    done = proxy.random_faults(random.Random(7), kinds=FAULT_KINDS, **kw)
    assert time.monotonic() - t0 < 5.0
    assert len(done) == 25 and proxy.mode == "pass"
    quick = {"n": 5, "min_gap_s": 0.0, "max_gap_s": 0.0, "dur_s": (0.0, 0.0)}
    assert proxy.random_faults(random.Random(3), **quick) == proxy.random_faults(
        random.Random(3), **quick
    )  # a seed reproduces the schedule
    stop.set()
    worker.join(5)
    assert not worker.is_alive() and outcomes["ok"] > 0
    with client() as c:
        assert c.get(proxy.url + "/json").status_code == 200


def test_stop_is_prompt_with_faults_running_and_connections_open(upstream: ServerThread) -> None:
    p = FaultProxy(upstream=("127.0.0.1", upstream.port)).start()
    result: list[list[tuple[str, float]]] = []
    kw = {"n": 1000, "min_gap_s": 0.01, "max_gap_s": 0.02, "dur_s": (0.5, 1.0)}
    runner = threading.Thread(
        target=lambda: result.append(p.random_faults(random.Random(1), kinds=["delay"], **kw))
    )
    held = socket.create_connection(("127.0.0.1", p.port), timeout=5)
    held.sendall(b"GET /events?n=1000&every=0.01 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert held.recv(1)  # the stream flows
    runner.start()
    wait_until_sync(lambda: p.mode == "delay", "the proxy in delay mode", timeout=3.0)
    t0 = time.monotonic()
    p.stop()
    runner.join(2)
    assert time.monotonic() - t0 < 2.0 and not runner.is_alive()
    assert result and 1 <= len(result[0]) < 1000
    held.settimeout(2)
    with held:
        with contextlib.suppress(ConnectionResetError):  # RST, or EOF after the buffered bytes
            read_all(held)
    p.stop()  # idempotent
