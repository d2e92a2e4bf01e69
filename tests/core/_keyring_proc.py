"""Run under ``dbus-run-session`` with an unlocked gnome-keyring: sign in with a password, close,
then open again with no password — the refresh token must come back from the Secret Service."""

import asyncio
import json
import sys
from pathlib import Path

import keyring

from core import Client, ClientConfig


async def live(client: Client) -> bool:
    for _ in range(1000):
        if client.status.state == "live":
            return True
        await asyncio.sleep(0.01)
    return False


async def main(url: str, data: str, password: str) -> None:
    cfg = dict(server_url=url, data_dir=data, username="alice", runtime_dir=Path(data) / "run")
    first = await Client.open(ClientConfig(**cfg, password=password))
    first_live = await live(first)
    errors = [first.credentials.keyring_error]
    await first.close()
    second = await Client.open(ClientConfig(**cfg))
    second_live = await live(second)
    errors.append(second.credentials.keyring_error)
    token = await second.credentials.refresh_token()
    await second.close()
    files = b"".join(p.read_bytes() for p in Path(data).rglob("*") if p.is_file())
    print(
        json.dumps(
            {
                "backend": type(keyring.get_keyring()).__name__,
                "first_live": first_live,
                "second_live": second_live,
                "errors": errors,
                "token_in_files": bool(token) and token.encode() in files,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
