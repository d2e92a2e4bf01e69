"""Another process of a profile, for tests/core/test_sign_out.py: it opens its ``Client`` on the
same cache and bus, prints ``ready``, and when a process of the profile signs out it prints
``let go <state>`` (its sync status by then), closes the client, prints ``closed`` and exits.

    python -m tests.core._sign_out_child URL DATA_DIR RUNTIME_DIR
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from core import Client, ClientConfig


async def main(url: str, data: str, runtime: str) -> int:
    config = ClientConfig(
        server_url=url, data_dir=Path(data), username="alice", runtime_dir=Path(runtime)
    )
    client = await Client.open(config)
    told = asyncio.Event()

    def let_go() -> None:
        print(f"let go {client.status.state}", flush=True)
        told.set()

    client.events.signing_out.connect(let_go)
    print(f"ready {client.leadership.member_id}", flush=True)
    try:
        async with asyncio.timeout(60):
            await told.wait()
    finally:
        await client.close()
    print("closed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(*sys.argv[1:4])))
