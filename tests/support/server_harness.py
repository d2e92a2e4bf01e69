"""The sync server under test, as the server tests drive it: ``Harness`` (one running server,
an HTTP client and the accounts alice, bob and carol), the checks of error answers, and the
pieces of the ``make_server`` fixture (``tests/server/conftest.py``)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from prometheus_client.parser import text_string_to_metric_families

from server.auth import now_ms
from server.context import AppContext
from server.runner import ServerThread
from server.settings import Settings
from server.storage.factory import storage_for

from .sse import SSEStream

T = TypeVar("T")

PASSWORD = "correct horse battery"
USERNAMES = ("alice", "bob", "carol")
API = "/api/v1"


@dataclass
class User:
    """A test account and, once signed in, its tokens."""

    name: str
    id: int
    token: str = ""
    refresh_token: str = ""
    expires_at: int = 0

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class ErrorLog(logging.Handler):
    """Collects ERROR records from the server's loggers."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def attach(self) -> None:
        # uvicorn re-applies its logging config per server, which drops foreign handlers.
        for name in ("server", "uvicorn.error"):
            logger = logging.getLogger(name)
            if self not in logger.handlers:
                logger.addHandler(self)

    def detach(self) -> None:
        for name in ("server", "uvicorn.error"):
            logging.getLogger(name).removeHandler(self)


class Harness:
    """One running server plus an HTTP client and the test accounts."""

    def __init__(self, thread: ServerThread, settings: Settings, users: dict[str, User]) -> None:
        self.thread = thread
        self.settings = settings
        self.users = users
        self.client = httpx.AsyncClient(
            base_url=thread.url + API,
            timeout=httpx.Timeout(20.0),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )
        self.streams: list[SSEStream] = []
        self.stopped = False
        # Server log lines at ERROR the test expects (exact messages); any other fails it.
        self.allowed_errors: set[str] = set()

    # --- the server ---------------------------------------------------------------------------

    @property
    def ctx(self) -> AppContext:
        return self.thread.app.state.ctx

    @property
    def epoch(self) -> int:
        return self.ctx.storage.epoch

    async def on_server(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the server's event loop (hub state is not thread-safe)."""
        loop = self.thread.server.loop
        assert loop is not None

        async def call() -> T:
            return fn()

        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(call(), loop))

    async def hub_count(self, name: str | None = None) -> int:
        hub = self.ctx.hub
        if name is None:
            return await self.on_server(lambda: hub.total)
        uid = self.users[name].id
        return await self.on_server(lambda: hub.count(uid))

    async def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            await asyncio.to_thread(self.thread.stop)

    # --- HTTP ---------------------------------------------------------------------------------

    async def login(self, name: str, password: str = PASSWORD) -> User:
        r = await self.client.post("/auth/token", json={"username": name, "password": password})
        assert r.status_code == 200, r.text
        body = r.json()
        user = self.users[name]
        user.token, user.refresh_token = body["access_token"], body["refresh_token"]
        user.expires_at = body["expires_at"]
        return user

    async def request(
        self, user: str | None, method: str, path: str, **kwargs: Any
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if user is not None:
            headers.update(self.users[user].auth)
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def get(self, user: str | None, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request(user, "GET", path, **kwargs)

    async def post(self, user: str | None, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request(user, "POST", path, **kwargs)

    async def create(
        self,
        user: str,
        title: str = "a conversation",
        members: tuple[str, ...] | list[str] = (),
        cid: str | None = None,
    ) -> dict[str, Any]:
        body = {"id": cid or str(uuid.uuid4()), "title": title, "members": list(members)}
        r = await self.post(user, "/conversations", json=body)
        assert r.status_code == 201, r.text
        return r.json()

    async def send(
        self, user: str, cid: str, body: str = "hello", mid: str | None = None
    ) -> dict[str, Any]:
        r = await self.post(
            user,
            f"/conversations/{cid}/messages",
            json={"id": mid or str(uuid.uuid4()), "body": body},
        )
        assert r.status_code == 201, r.text
        return r.json()

    async def patch(self, user: str, cid: str, **fields: Any) -> httpx.Response:
        return await self.request(user, "PATCH", f"/conversations/{cid}", json=fields)

    async def conversations(self, user: str) -> dict[str, Any]:
        r = await self.get(user, "/conversations")
        assert r.status_code == 200, r.text
        return r.json()

    async def head(self, user: str) -> int:
        return (await self.conversations(user))["head"]

    async def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Prometheus samples as ``{(name, sorted labels): value}``."""
        r = await self.get("alice", "/metrics")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/plain")
        out = {}
        for family in text_string_to_metric_families(r.text):
            for sample in family.samples:
                out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return out

    async def metric(self, name: str, **labels: str) -> float:
        return (await self.metrics()).get((name, tuple(sorted(labels.items()))), 0.0)

    # --- streams ------------------------------------------------------------------------------

    async def stream_response(
        self,
        user: str | None,
        *,
        last_event_id: str | bytes | None = None,
        since: str | None = None,
        token: str | None = None,
    ) -> httpx.Response:
        """Send ``GET /events`` and return the (streaming) response without reading it."""
        headers: dict[str, str | bytes] = {"Accept": "text/event-stream"}
        if user is not None:
            headers["Authorization"] = f"Bearer {token or self.users[user].token}"
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        params = {"since": since} if since is not None else None
        req = self.client.build_request(
            "GET", "/events", headers=headers, params=params, timeout=httpx.Timeout(10, read=None)
        )
        return await self.client.send(req, stream=True)

    async def refused_stream(self, user: str | None, **kwargs: Any) -> httpx.Response:
        """Open a stream that the server must refuse; returns the read error response."""
        r = await self.stream_response(user, **kwargs)
        try:
            await r.aread()
        finally:
            await r.aclose()
        assert r.status_code != 200, "the stream was accepted"
        return r

    async def stream(
        self,
        user: str,
        *,
        last_event_id: str | bytes | None = None,
        since: str | None = None,
        token: str | None = None,
    ) -> SSEStream:
        """Open a stream, check the response, read and check ``hello`` (also its ``id``: where
        the stream starts, none when a reset follows) and its spread ``retry``."""
        r = await self.stream_response(user, last_event_id=last_event_id, since=since, token=token)
        if r.status_code != 200:
            await r.aread()
            await r.aclose()
            raise AssertionError(f"stream refused: {r.status_code} {r.text}")
        assert r.headers["content-type"].startswith("text/event-stream"), r.headers
        assert r.headers["cache-control"] == "no-cache, no-transform"
        assert "connection" not in r.headers, r.headers  # hop-by-hop: not the app's
        s = SSEStream(r)
        self.streams.append(s)
        hello = await s.expect("hello")
        body = hello.json()
        assert set(body) == {
            "epoch",
            "head",
            "min_retained",
            "resumed",
            "expires_at",
            "heartbeat_s",
        }
        assert body["epoch"] == self.epoch
        retry_ms = self.settings.retry_ms
        assert hello.retry is not None and retry_ms * 3 // 4 <= hello.retry <= retry_ms * 5 // 4
        header = (
            last_event_id.decode("utf-8", "replace")
            if isinstance(last_event_id, bytes)
            else last_event_id
        )
        cursor = header if header and header.strip() else since or None  # blank: no cursor
        if cursor is None:
            assert hello.id == f"{self.epoch}:{body['head']}", hello
        elif body["resumed"]:
            assert hello.id == f"{self.epoch}:{int(cursor.split(':')[-1])}", (hello, cursor)
        else:
            assert hello.id is None, hello  # a reset follows and carries the id
        s.hello = body
        return s

    async def aclose(self) -> None:
        for s in self.streams:
            await s.aclose()
        await self.client.aclose()
        await self.stop()
        assert self.thread.error is None, self.thread.error


def event_id(h: Harness, seq: int) -> str:
    """The SSE event id of change ``seq`` in the server's current epoch."""
    return f"{h.epoch}:{seq}"


async def add_accounts(database: str | Path, password_hash: str) -> dict[str, User]:
    """Create alice, bob and carol in ``database`` (an SQLite file or a PostgreSQL URL); returns
    them (not signed in)."""
    storage = storage_for(database, durable=False)
    await storage.open()
    try:
        return {
            name: User(name, await storage.add_user(name, password_hash, now_ms()))
            for name in USERNAMES
        }
    finally:
        await storage.close()


MakeServer = Callable[..., Awaitable[Harness]]


# --- error answers -------------------------------------------------------------------------------


def error_of(r: httpx.Response) -> tuple[int, str] | str:
    """``(status, code)`` when ``r`` is a well-formed error answer, else what is wrong with it."""
    if not r.headers.get("content-type", "").startswith("application/json"):
        return f"content-type {r.headers.get('content-type')!r}: {r.text[:200]!r}"
    try:
        body = r.json()
    except ValueError:
        return f"not JSON: {r.text[:200]!r}"
    if not (isinstance(body, dict) and set(body) == {"error"}):
        return f"not an error body: {body!r}"
    err = body["error"]
    if not (isinstance(err, dict) and set(err) == {"code", "message"}):
        return f"bad error object: {err!r}"
    if not (isinstance(err["code"], str) and isinstance(err["message"], str) and err["message"]):
        return f"bad code/message: {err!r}"
    return r.status_code, err["code"]


def assert_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """``r`` is a ``status`` answer with ``{"error": {"code": code, "message": ...}}``."""
    assert error_of(r) == (status, code), (r.status_code, r.text[:500])
    return r.json()
