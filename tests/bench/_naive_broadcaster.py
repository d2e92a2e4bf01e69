"""The common web design Concord's feed replaces: a dict of in-memory queues, no persistence,
no resume. The baseline of ``server_fanout.py``: ``python _naive_broadcaster.py PORT``."""

from __future__ import annotations

import asyncio
import itertools
import sys

import uvicorn
from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

queues: dict[int, asyncio.Queue[bytes]] = {}
ids = itertools.count()


async def publish(request: Request) -> JSONResponse:
    body = await request.body()
    for q in queues.values():
        q.put_nowait(body)
    return JSONResponse({"ok": True, "subscribers": len(queues)})


async def events(_request: Request) -> EventSourceResponse:
    key = next(ids)
    q: asyncio.Queue[bytes] = asyncio.Queue()
    queues[key] = q

    async def gen():  # type: ignore[no-untyped-def]
        try:
            while True:
                yield {"event": "change", "data": (await q.get()).decode()}
        finally:
            queues.pop(key, None)

    return EventSourceResponse(gen(), ping=0)


app = Starlette(routes=[Route("/publish", publish, methods=["POST"]), Route("/events", events)])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
