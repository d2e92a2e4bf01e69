"""The embedded server's host, in one process: it serves exactly while it leads the app bus (a
host that loses the lock stops serving), a new URL reaches every member, a client follows the
server to another port within 2 s with its queued actions, and the embedded account never needs
a password — not even when the server comes back with an empty database."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

from core import Client, ClientConfig
from desktop.embedded import EmbeddedHost, EmbeddedServer, token_source
from desktop.instance import AppInstance
from tests.support.waiting import wait_until


async def test_the_bus_leader_serves_and_a_host_that_loses_the_lock_stops(tmp_path: Path) -> None:
    run, data, state = tmp_path / "run", tmp_path / "server", tmp_path / "embedded.json"
    a = await AppInstance.open("profile", run)
    b = await AppInstance.open("profile", run)
    ha, hb = EmbeddedHost(a, data, state), EmbeddedHost(b, data, state)
    try:
        await ha.follow_leadership()
        await hb.follow_leadership()
        assert a.primary and ha.url is not None and hb.url is None
        assert await b.wait_server_url(5) == ha.url  # asked, answered by the host
        heard: list[str] = []
        b.on_server_url = heard.append

        await a.bus.step_down()  # a is alive but no longer holds the lock
        await wait_until(lambda: hb.url is not None, what="b serves once it leads")
        await wait_until(lambda: ha.url is None, what="a stops serving (fenced)")
        assert a.server_url == b.server_url == hb.url and b.server_epoch > 1
        assert heard == [hb.url], "b's own announcement reaches b's client"
    finally:
        await ha.close()
        await hb.close()
        await a.close()
        await b.close()


async def test_a_server_thread_that_ends_by_itself_is_served_again(tmp_path: Path) -> None:
    run, data, state = tmp_path / "run", tmp_path / "server", tmp_path / "embedded.json"
    a = await AppInstance.open("profile", run)
    b = await AppInstance.open("profile", run)
    ha, hb = EmbeddedHost(a, data, state), EmbeddedHost(b, data, state)
    try:
        await ha.follow_leadership()
        await hb.follow_leadership()
        first = ha.server
        assert first is not None and await b.wait_server_url(5) == first.url
        heard: list[str] = []
        b.on_server_url = heard.append
        await asyncio.to_thread(first.thread.stop)  # behind the host's back (a crash, say)
        await wait_until(lambda: heard, what="served again and announced again")
        assert ha.server is not None and ha.server is not first and hb.server is None
        assert heard == [ha.server.url] == [first.url]  # its port was free: the same URL
    finally:
        await ha.close()
        await hb.close()
        await a.close()
        await b.close()


async def _live_client(tmp_path: Path, url: str, statuses: list[str]) -> Client:
    client = await Client.open(
        ClientConfig(
            url,
            tmp_path / "cache",
            "me",
            runtime_dir=tmp_path / "run",
            profile="embedded",
            refresh_token_source=token_source(tmp_path / "server", "me"),
        )
    )
    client.events.status_changed.connect(lambda s: statuses.append(s.state))
    await wait_until(lambda: client.status.state == "live", what="live")
    return client


async def test_a_client_follows_the_server_to_another_port(tmp_path: Path) -> None:
    first = EmbeddedServer(tmp_path / "server")
    await asyncio.to_thread(first.start)
    statuses: list[str] = []
    client = await _live_client(tmp_path, first.url, statuses)
    second = None
    try:
        conv = await client.create_conversation("moving")
        await client.wait_synced()
        await asyncio.to_thread(first.stop)  # the host died
        await client.send_message(conv.id, "queued while no server ran")
        await client.rename_conversation(conv.id, "moved")
        await wait_until(lambda: client.status.state != "live", what="the stream noticed")

        second = EmbeddedServer(tmp_path / "server")  # the same data, another port
        await asyncio.to_thread(second.start)
        assert second.port != first.port
        t0 = time.monotonic()
        client.set_server_url(second.url)
        await wait_until(lambda: client.status.state == "live", timeout=2, what="live in 2 s")
        live = time.monotonic() - t0
        await client.wait_synced(2)
        synced = time.monotonic() - t0
        print(f"\nnew port: live {live:.3f} s, queued actions on the server {synced:.3f} s")
        assert [m.body for m in client.messages(conv.id)] == ["queued while no server ran"]
        assert client.conversation(conv.id).title == "moved"  # type: ignore[union-attr]
        assert "sign_in_required" not in statuses
        assert client.credentials.keyring_error is None  # the keyring was never used
    finally:
        await client.close()
        if second is not None:
            await asyncio.to_thread(second.stop)


async def test_an_emptied_server_is_signed_in_to_without_a_password(tmp_path: Path) -> None:
    first = EmbeddedServer(tmp_path / "server")
    await asyncio.to_thread(first.start)
    statuses: list[str] = []
    client = await _live_client(tmp_path, first.url, statuses)
    second = None
    try:
        await asyncio.to_thread(first.stop)
        shutil.rmtree(tmp_path / "server")  # every token the client had is gone with it
        second = EmbeddedServer(tmp_path / "server", first.port)
        await asyncio.to_thread(second.start)
        client.set_server_url(second.url)
        await wait_until(lambda: statuses[-1] != "live", what="the stream dropped")
        await wait_until(lambda: client.status.state == "live", timeout=5, what="live again")
        assert "sign_in_required" not in statuses
    finally:
        await client.close()
        if second is not None:
            await asyncio.to_thread(second.stop)


async def test_a_minted_token_is_kept_until_refused_and_a_failing_source_is_retried() -> None:
    from core.credentials import Credentials
    from core.http import NetworkError

    minted: list[str] = []

    async def source() -> str:
        if len(minted) == 2:
            raise OSError("database is locked")
        minted.append(f"t{len(minted)}")
        return minted[-1]

    creds = Credentials("embedded-test")
    creds.set_source(source)
    assert creds.mints
    # One token per session (no new token row every refresh) ...
    assert [await creds.refresh_token(), await creds.refresh_token()] == ["t0", "t0"]
    await creds.forget()  # ... until the server refuses it: then a fresh one is minted
    assert await creds.refresh_token() == "t1"
    await creds.forget()
    try:
        await creds.refresh_token()
    except NetworkError as exc:  # the engine retries it like an unreachable server
        assert "database is locked" in str(exc)
    else:
        raise AssertionError("a failing source must not look like a missing token")
    assert creds.keyring_error is None  # the keyring was never asked
