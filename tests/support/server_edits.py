"""Changes made straight in a live server's database, as another device of alice's would make
them while the client under test is offline (``server`` is a ``LiveServer`` or anything with its
``data_dir``)."""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

from core import protocol as p
from server.auth import now_ms
from server.storage import SQLiteStorage


def change_behind_our_back(server: Any, cid: str, base: int, title: str) -> None:
    """Another device of the same user renames, straight in the server's database."""

    async def run() -> None:
        store = SQLiteStorage(server.data_dir / "concord.db")
        await store.open()
        await store.patch_conversation(1, cid, p.ConversationPatch(base, title=title), now_ms())
        await store.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


def rename_behind_our_back(server: Any, cid: str, title: str) -> None:
    """Another device renames a conversation still at version 1."""

    async def run() -> None:
        store = SQLiteStorage(server.data_dir / "concord.db")
        await store.open()
        await store.patch_conversation(
            1, cid, p.ConversationPatch(base_version=1, title=title), now_ms()
        )
        await store.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()
