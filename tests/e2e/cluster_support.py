"""What the cluster tests (``test_cluster*.py``) share besides their fixtures (in this folder's
conftest): ``Net``, a small HTTP client of the API that signs in once and opens streams on any
instance, and readers of change events."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from tests.support.cluster import USERS, Cluster
from tests.support.procs import PASSWORD
from tests.support.sse import Event, SSEStream

MakeCluster = Callable[..., Awaitable[Cluster]]


def api(url: str) -> str:
    return url + "/api/v1"


class Net:
    """Bearer tokens (a token from one instance is good on every instance: one database),
    writes, and streams; every stream opened is closed at the end."""

    def __init__(self) -> None:
        self.http = httpx.AsyncClient(timeout=10)
        self.tokens: dict[str, str] = {}
        self.streams: list[SSEStream] = []

    async def login(self, url: str) -> None:
        for name in USERS:
            r = await self.http.post(
                api(url) + "/auth/token", json={"username": name, "password": PASSWORD}
            )
            assert r.status_code == 200, r.text
            self.tokens[name] = r.json()["access_token"]

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    async def create(self, url: str, user: str, members: list[str]) -> str:
        cid = str(uuid.uuid4())
        r = await self.http.post(
            api(url) + "/conversations",
            json={"id": cid, "title": "cluster", "members": members},
            headers=self.auth(user),
        )
        assert r.status_code == 201, r.text
        return cid

    async def send(self, url: str, user: str, cid: str, body: str) -> tuple[str, float]:
        """Post a message; returns its id and when the answer (201) came."""
        mid = str(uuid.uuid4())
        r = await self.http.post(
            api(url) + f"/conversations/{cid}/messages",
            json={"id": mid, "body": body},
            headers=self.auth(user),
        )
        answered = time.monotonic()
        assert r.status_code == 201, r.text
        return mid, answered

    async def stream(
        self,
        url: str,
        user: str,
        last_event_id: str | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> tuple[SSEStream, Event]:
        """``GET events`` on ``url``: the stream and its ``hello``."""
        headers = {"Accept": "text/event-stream", **self.auth(user)}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        client = http or self.http
        req = client.build_request(
            "GET", api(url) + "/events", headers=headers, timeout=httpx.Timeout(10, read=None)
        )
        r = await client.send(req, stream=True)
        if r.status_code != 200:
            await r.aread()
            await r.aclose()
            raise AssertionError(f"stream refused: {r.status_code} {r.text}")
        s = SSEStream(r)
        self.streams.append(s)
        return s, await s.expect("hello")

    async def snapshot(self, url: str, user: str) -> dict[str, Any]:
        r = await self.http.get(
            api(url) + "/snapshot", params={"messages": 200}, headers=self.auth(user)
        )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def aclose(self) -> None:
        for s in self.streams:
            await s.aclose()
        await self.http.aclose()


def seq_of(event: Event) -> int:
    """The feed seq of a ``change`` event, checked against its id."""
    seq: int = event.json()["seq"]
    assert event.id is not None and event.id.endswith(f":{seq}"), event
    return seq


def message_of(event: Event) -> dict[str, Any] | None:
    """The message of a ``message.created`` change, else None."""
    change = event.json()
    if change["kind"] != "message.created":
        return None
    message: dict[str, Any] = change["data"]["message"]
    return message
