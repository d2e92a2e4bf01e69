"""The feed as the ecosystem's most used Python SSE client (httpx-sse) consumes it: connect,
read ``hello`` and changes, disconnect anywhere, resume with ``Last-Event-ID`` taken from the
last event it saw — no change lost or repeated. (The app itself parses with ``core/sse.py``.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
from httpx_sse import ServerSentEvent, aconnect_sse

from tests.support.server_harness import Harness, event_id


class Consumer:
    """A plain httpx-sse consumer: remembers the last event id, collects change seqs."""

    def __init__(self, h: Harness, user: str) -> None:
        self.h, self.user = h, user
        self.last_id = ""
        self.seqs: list[int] = []
        self.types: list[str] = []

    async def session(self, take: int) -> None:
        """One connection: read ``hello``, then ``take`` changes, then hang up."""
        headers = dict(self.h.users[self.user].auth)
        if self.last_id:
            headers["Last-Event-ID"] = self.last_id
        async with aconnect_sse(self.h.client, "GET", "/events", headers=headers) as source:
            assert source.response.status_code == 200
            events = source.aiter_sse()
            try:
                hello = await anext(events)
                assert hello.event == "hello"
                self.see(hello)
                taken = 0
                while taken < take:
                    event = await asyncio.wait_for(anext(events), 5)
                    self.see(event)
                    taken += event.event == "change"
            finally:
                await events.aclose()

    def see(self, event: ServerSentEvent) -> None:
        self.types.append(event.event)
        if event.id:
            self.last_id = event.id  # what EventSource does: the id persists across events
        if event.event == "change":
            self.seqs.append(event.json()["seq"])


async def writes(h: Harness, cid: str, n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield (await h.send("alice", cid, f"m{i}"))["seq"]


async def test_httpx_sse_consumes_and_resumes_without_loss_or_duplicates(srv: Harness) -> None:
    conv = (await srv.create("alice"))["conversation"]
    c = Consumer(srv, "alice")
    await c.session(take=0)  # hello only: a cut before the first change
    assert c.last_id == event_id(srv, 1)  # hello's id: where the stream started
    assert [s async for s in writes(srv, conv["id"], 3)] == [2, 3, 4]

    # Resumed: the backlog arrives; hang up in the middle of it.
    await c.session(take=2)
    assert c.seqs == [2, 3]
    assert c.last_id == event_id(srv, 3)
    assert [s async for s in writes(srv, conv["id"], 4)] == [5, 6, 7, 8]

    # Resumed again: the rest of the backlog, then live changes.
    task = asyncio.create_task(c.session(take=7))  # the live writes race the backlog
    assert [s async for s in writes(srv, conv["id"], 2)] == [9, 10]
    await asyncio.wait_for(task, 10)
    assert c.seqs == list(range(2, 11))  # every change once, in order
    assert c.types.count("hello") == 3 and "reset" not in c.types


async def test_httpx_sse_sees_a_reset_once_and_then_resumes(srv: Harness) -> None:
    conv = (await srv.create("alice"))["conversation"]
    c = Consumer(srv, "alice")
    c.last_id = f"{srv.epoch + 1}:5"  # from another epoch (a restored server)
    headers = {**srv.users["alice"].auth, "Last-Event-ID": c.last_id}
    async with aconnect_sse(srv.client, "GET", "/events", headers=headers) as source:
        events = source.aiter_sse()
        try:
            for _ in range(2):
                c.see(await asyncio.wait_for(anext(events), 5))
        finally:
            await events.aclose()
    assert c.types == ["hello", "reset"]
    assert c.last_id == event_id(srv, 1)  # the reset's id: live from the head after a full sync
    await srv.send("alice", conv["id"])
    await c.session(take=1)
    assert c.types == ["hello", "reset", "hello", "change"]
    assert c.seqs == [2]


async def test_httpx_sse_reads_the_stream_headers(srv: Harness) -> None:
    async with httpx.AsyncClient(base_url=srv.client.base_url) as client:
        async with aconnect_sse(
            client, "GET", "/events", headers=srv.users["alice"].auth
        ) as source:
            assert source.response.headers["content-type"].startswith("text/event-stream")
            hello = await anext(source.aiter_sse())
            assert hello.retry is not None and 1500 <= hello.retry <= 2500
