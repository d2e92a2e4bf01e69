"""A draft is mirrored to the device's other processes over the bus: typed in one, shown in
another within the budget, and cleared everywhere by a send (a real second client process)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from core import Client, ClientConfig
from tests.support.live_server import FAST, PASSWORD
from tests.support.procs import ClientProc

MIRROR_S = 0.3  # the budget for another window of the device to show a draft
MARGIN_S = 0.2  # a loaded test machine


async def test_a_draft_reaches_the_devices_other_process(tmp_path: Path, live_server) -> None:
    config = ClientConfig(
        server_url=live_server.url,
        data_dir=tmp_path / "alice-desk",  # the same cache and bus as B's
        username="alice",
        password=PASSWORD,
        runtime_dir=tmp_path / "run",
        engine=FAST,
    )
    a = await Client.open(config)
    desk = tmp_path / "alice-desk"
    b = await ClientProc(live_server.url, desk, tmp_path / "run", "alice").start()
    try:
        conv = await a.create_conversation("mirrored")
        # A → B: written here, B re-reads it from the shared cache when the bus tells it.
        start = time.monotonic()
        a.set_draft(conv.id, "typed in process A")
        got = await b.wait_event("draft_changed", cid=conv.id, text="typed in process A")
        assert got["t"] - start < MIRROR_S + MARGIN_S
        assert await b.call("draft", cid=conv.id) == "typed in process A"
        # B → A, and a send in A clears it in B.
        arrived = asyncio.Event()
        a.events.draft_changed.connect(lambda cid, text: text == "and in B" and arrived.set())
        start = time.monotonic()
        await b.call("set_draft", cid=conv.id, text="and in B")
        await asyncio.wait_for(arrived.wait(), MIRROR_S + MARGIN_S + 1)  # + the stdin hop
        assert a.draft(conv.id) == "and in B"
        await a.send_message(conv.id, "and in B")
        await b.wait_event("draft_changed", cid=conv.id, text="")
    finally:
        await b.quit()
        await a.close()
