"""HTTP limits below the app (server/http_protocol.py), probed with raw sockets on a real server:
oversized heads, too many header lines, slowloris, idle connections, keep-alive and the cap on
open connections — each with a short configured limit, and each with its within-limit twin.
Each refusal and idle close is then read back from ``/metrics`` (scraped from loopback)."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from server.app import create_app
from server.limits import HttpLimits, raise_open_files_limit
from server.runner import ServerThread
from server.settings import Settings
from tests.support.live_server import PASSWORD, add_users
from tests.support.waiting import wait_until_sync

Serve = Callable[..., ServerThread]
HEALTH = b"GET /api/v1/health HTTP/1.1\r\nHost: t\r\n"


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """``serve(**limits)``: a started server (alice's account, 0.3 s heartbeats) with ``limits``."""
    started: list[ServerThread] = []

    def start(**limits: Any) -> ServerThread:
        data = tmp_path / f"server{len(started)}"
        data.mkdir()
        add_users(data, ("alice",))
        app = create_app(Settings(data_dir=data, durable=False, heartbeat_s=0.3))
        thread = ServerThread(app, limits=HttpLimits(**limits))
        started.append(thread)
        return thread.start()

    yield start
    for thread in started:
        thread.stop()


def connect(server: ServerThread) -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes (EOF or reset); fails after ``timeout``."""
    got = b""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([sock], [], [], left)[0]:
            break
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return got
        if not chunk:
            return got
        got += chunk
    raise AssertionError(f"connection still open after {timeout}s (got {got[:200]!r})")


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response with a ``content-length`` (the connection stays usable)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a response head: {buf!r}"
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        assert chunk, "closed in the middle of a body"
        body += chunk
    return int(lines[0].split()[1]), headers, body


def status_of(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


def counted(server: ServerThread) -> dict[str, float]:
    """``/metrics``' refusals and idle closes below the app, by label value (loopback scrape)."""
    with connect(server) as sock:
        sock.sendall(b"GET /api/v1/metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        status, _, body = read_response(sock)
    assert status == 200, body
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == "concord_http_rejected_total":
                found[sample.labels["reason"]] = sample.value
            elif sample.name == "concord_http_idle_closed_total":
                found[f"idle_{sample.labels['phase']}"] = sample.value
    return found


def test_a_head_over_the_size_limit_gets_431_and_the_server_stays_up(serve: Serve) -> None:
    server = serve(max_head_bytes=8192)
    with connect(server) as sock:  # just under the limit: served
        sock.sendall(HEALTH + b"X-Pad: " + b"a" * 7000 + b"\r\n\r\n")
        assert read_response(sock)[0] == 200
    with connect(server) as sock:  # over it, never finished: refused at once
        sock.sendall(HEALTH + b"X-Pad: " + b"a" * 16384)
        reply = read_until_closed(sock, timeout=5)
    assert status_of(reply) == 431
    assert json.loads(reply.partition(b"\r\n\r\n")[2])["error"]["code"] == "head_too_large"
    with connect(server) as sock:  # over it, whole, in a single write: refused all the same
        sock.sendall(HEALTH + b"X-Pad: " + b"a" * 16384 + b"\r\n\r\n")
        assert status_of(read_until_closed(sock, timeout=5)) == 431
    assert counted(server) == {"head_too_large": 2}


def test_refusals_are_logged_at_most_once_a_minute(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    """An attack of many bad heads is a line a minute in the log, not one per head (the metric
    counts each). A line from an earlier test may already fill this minute: at most one."""
    server = serve(max_head_bytes=1024)
    with caplog.at_level("WARNING", logger="server.http_protocol"):
        for _ in range(5):
            with connect(server) as sock:
                sock.sendall(HEALTH + b"X-Pad: " + b"a" * 4096 + b"\r\n\r\n")
                assert status_of(read_until_closed(sock, timeout=5)) == 431
    lines = [r for r in caplog.records if "request head over" in r.getMessage()]
    assert len(lines) <= 1, [r.getMessage() for r in lines]
    assert counted(server) == {"head_too_large": 5}


def test_a_flood_of_head_bytes_is_cut_off_early(serve: Serve) -> None:
    """The probe's 48 MiB header: the server stops reading after the limit (431, or a reset
    when the unread rest is still arriving), long before the sender is done."""
    server = serve()  # the default limit
    sent = 0
    with connect(server) as sock:
        sock.sendall(HEALTH + b"X-Big: ")
        with pytest.raises(OSError):  # broken pipe / reset: the server closed
            for _ in range(48 * 16):
                sent += sock.send(b"a" * 65536)
        assert sent < 16 * 2**20
        try:
            reply = read_until_closed(sock, timeout=5)
        except ConnectionError:
            reply = b""
    assert reply == b"" or status_of(reply) == 431
    with connect(server) as sock:
        sock.sendall(HEALTH + b"\r\n")
        assert read_response(sock)[0] == 200


def test_too_many_header_lines_get_431(serve: Serve) -> None:
    server = serve(max_head_bytes=2**20, max_header_lines=100)
    with connect(server) as sock:
        sock.sendall(HEALTH + b"X-A: b\r\n" * 98 + b"\r\n")  # 99 lines with Host
        assert read_response(sock)[0] == 200
    with connect(server) as sock:
        sock.sendall(HEALTH + b"X-A: b\r\n" * 5000 + b"\r\n")
        reply = read_until_closed(sock, timeout=5)
    assert status_of(reply) == 431
    assert counted(server) == {"head_too_large": 1}


def test_a_trickled_head_is_closed_at_the_head_timeout(serve: Serve) -> None:
    server = serve(head_timeout_s=1.0)
    with connect(server) as sock:  # a slow but whole head within the timeout is served
        for part in (b"GET /api/v1/health HTTP/1.1\r\n", b"Host: t\r\n", b"\r\n"):
            sock.sendall(part)
            time.sleep(0.25)  # the client's pace is what is under test
        assert read_response(sock)[0] == 200
    with connect(server) as sock:  # slowloris: a header line every 0.1 s, forever
        started = time.monotonic()
        sock.sendall(b"GET /api/v1/health HTTP/1.1\r\n")
        reply = b""
        closed = False
        while not closed and time.monotonic() - started < 5:
            if select.select([sock], [], [], 0.1)[0]:
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                reply += chunk
                closed = not chunk
                continue
            try:
                sock.sendall(b"X-A: b\r\n")
            except OSError:
                closed = True
        elapsed = time.monotonic() - started
    assert closed, "the trickled head was not cut off within 5 s"
    assert 0.9 <= elapsed < 3.0, elapsed
    assert reply == b"" or status_of(reply) == 408
    assert counted(server) == {"head_timeout": 1}  # the slow but whole head was not refused


def test_an_idle_connection_is_closed_quietly(serve: Serve) -> None:
    server = serve(head_timeout_s=1.0)
    with connect(server) as sock:
        started = time.monotonic()
        assert read_until_closed(sock, timeout=5) == b""
        assert 0.9 <= time.monotonic() - started < 3.0
    assert counted(server) == {"idle_before_first_request": 1}  # idle, not a refused head


def test_keep_alive_is_reused_then_closed_when_idle(serve: Serve) -> None:
    server = serve(keepalive_timeout_s=0.6, head_timeout_s=10.0)
    with connect(server) as sock:
        for _ in range(3):  # reused while requests come within the idle timeout
            sock.sendall(HEALTH + b"\r\n")
            assert read_response(sock)[0] == 200
            time.sleep(0.2)
        idle_from = time.monotonic() - 0.2
        assert read_until_closed(sock, timeout=5) == b""
        assert 0.5 <= time.monotonic() - idle_from < 3.0  # the keep-alive, not the head timeout
    assert counted(server) == {"idle_keepalive": 1}


def _token(server: ServerThread) -> str:
    body = json.dumps({"username": "alice", "password": PASSWORD}).encode()
    with connect(server) as sock:
        sock.sendall(
            b"POST /api/v1/auth/token HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        status, _, reply = read_response(sock)
    assert status == 200, reply
    return str(json.loads(reply)["access_token"])


def _open_stream(server: ServerThread, token: str) -> socket.socket:
    sock = connect(server)
    sock.sendall(
        b"GET /api/v1/events HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n"
        b"Authorization: Bearer " + token.encode() + b"\r\n\r\n"
    )
    _expect(sock, b"event: hello")
    return sock


def _expect(sock: socket.socket, marker: bytes) -> None:
    got = b""
    while marker not in got:
        chunk = sock.recv(65536)
        assert chunk, f"stream closed before {marker!r}: {got!r}"
        got += chunk


def test_connections_past_the_cap_get_503_while_streams_go_on(serve: Serve) -> None:
    # Short timeouts: the streams must outlive both (they are neither a head nor idle).
    server = serve(max_connections=3, head_timeout_s=0.5, keepalive_timeout_s=0.5)
    token = _token(server)
    connections = server.server.server_state.connections
    wait_until_sync(lambda: not connections, "the sign-in connection is closed")
    streams = [_open_stream(server, token) for _ in range(2)]
    third = connect(server)
    third.sendall(HEALTH + b"\r\n")
    assert read_response(third)[0] == 200  # the third connection is within the cap
    with connect(server) as fourth:
        fourth.sendall(HEALTH + b"\r\n")
        reply = read_until_closed(fourth, timeout=5)
    assert status_of(reply) == 503
    assert b"retry-after: 5" in reply.lower()
    assert json.loads(reply.partition(b"\r\n\r\n")[2])["error"]["code"] == "over_capacity"
    third.close()
    wait_until_sync(lambda: len(connections) == 2, "the third connection is closed")
    got = counted(server)  # the scrape itself is the third connection again
    assert got.get("over_capacity") == 1 and not {"head_too_large", "head_timeout"} & set(got)
    third = connect(server)
    third.sendall(HEALTH + b"\r\n")
    assert read_response(third)[0] == 200
    time.sleep(1.0)  # past both timeouts: the idle third is closed, the streams go on
    assert read_until_closed(third, timeout=1) == b""
    third.close()
    assert counted(server).get("idle_keepalive", 0) >= 1
    wait_until_sync(lambda: len(connections) == 2, "the scrape's connection is closed")
    for sock in streams:
        _expect(sock, b": hb")
    with connect(server) as again:  # room again
        again.sendall(HEALTH + b"\r\n")
        assert read_response(again)[0] == 200
    for sock in streams:
        sock.close()


def test_the_default_cap_leaves_room_for_10000_streams_and_descriptors_follow() -> None:
    resource = pytest.importorskip("resource")  # POSIX: Windows has no such limit
    cap = HttpLimits().max_connections
    assert cap >= 10_000 + 500  # the streams, plus requests beside them
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    hard = before[1]
    low = 1024 if hard == resource.RLIM_INFINITY else min(1024, hard)  # a common default
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))
    try:
        raise_open_files_limit(cap)
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        assert soft == (cap + 256 if hard == resource.RLIM_INFINITY else min(cap + 256, hard))
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, before)


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError):
        HttpLimits(head_timeout_s=0)
    with pytest.raises(ValueError):
        HttpLimits(max_connections=0)
