"""Sync when processes die: the server's, the client's, the leader's (real processes, kill -9)."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.faultproxy import FaultProxy
from tests.support.live_server import FAST, PASSWORD, add_users
from tests.support.procs import ClientProc, ServerProc
from tests.support.waiting import wait_until


async def test_offline_edits_survive_client_kill_and_arrive_once(tmp_path: Path) -> None:
    (tmp_path / "srv").mkdir()
    add_users(tmp_path / "srv")
    server = await ServerProc(tmp_path / "srv").start()
    client = await ClientProc(server.url, tmp_path / "dev", tmp_path / "run", "alice").start()
    try:
        cid = await client.call("create", title="offline")
        await client.call("wait_synced")
        await server.kill()  # the server is gone ...
        for i in range(50):  # ... while the user keeps typing
            await client.call("send", cid=cid, body=f"edit {i}")
        await client.kill()  # and the client dies before any of it was sent
        await server.start()
        client = await ClientProc(server.url, tmp_path / "dev", tmp_path / "run", "alice").start()
        await client.call("wait_synced", timeout=30)

        async def bodies() -> list[str]:
            state = await client.call("state")
            return state[cid]["messages"]

        await wait_until(lambda: _count(bodies(), 50), timeout=20, what="50 messages")
        assert sorted(await bodies()) == sorted(f"edit {i}" for i in range(50))
        stats = await client.call("stats")
        assert stats["outbox"] == 0
        assert len(stats["applied"]) == len(set(stats["applied"]))
    finally:
        await client.quit()
        await server.stop()


async def _count(coro, n: int) -> bool:  # type: ignore[no-untyped-def]
    return len(await coro) == n


async def test_server_kill_and_restart_goes_back_to_live(tmp_path: Path, clients) -> None:
    (tmp_path / "srv").mkdir()
    add_users(tmp_path / "srv")
    server = await ServerProc(tmp_path / "srv").start()
    try:
        a = await clients(server.url, "alice", "d1", engine=FAST)
        states: list[str] = []
        a.events.status_changed.connect(lambda s: states.append(s.state))
        await wait_until(lambda: a.status.state == "live", what="live")
        conv = await a.create_conversation("before")
        await a.wait_synced(10)
        await server.kill()
        await wait_until(lambda: "unreachable" in states, timeout=10, what="unreachable")
        await a.rename_conversation(conv.id, "during the outage")
        during_outage = list(states[states.index("live") + 1 :])
        await server.start()
        await wait_until(lambda: a.status.state == "live", timeout=15, what="live again")
        await a.wait_synced(15)
        assert a.conversation(conv.id).title == "during the outage"
        assert not a.conversation(conv.id).pending
        after_kill = states[states.index("live") + 1 :]
        # Honest: the stream dropped (reconnecting), nothing reached the server (unreachable),
        # and it never claimed to be polling while every poll failed.
        assert "reconnecting" in after_kill and "unreachable" in after_kill
        assert "polling" not in during_outage and after_kill[-1] == "live"
    finally:
        await server.stop()


async def test_three_processes_one_stream_and_failover(tmp_path: Path) -> None:
    (tmp_path / "srv").mkdir()
    add_users(tmp_path / "srv")
    server = await ServerProc(tmp_path / "srv").start()
    procs = [
        await ClientProc(server.url, tmp_path / "dev", tmp_path / "run", "alice").start()
        for _ in range(3)
    ]
    try:

        async def leaders() -> list[ClientProc]:
            found = []
            for proc in procs:
                if proc.proc and proc.proc.returncode is None:
                    if (await proc.call("status"))["leader"]:
                        found.append(proc)
            return found

        async def one_stream() -> bool:
            return await server.metric("concord_open_streams") == 1

        await wait_until(one_stream, timeout=15, what="exactly one open stream")
        (leader,) = await leaders()
        cid = await procs[0].call("create", title="three")
        await procs[0].call("wait_synced")

        async def all_see_it() -> bool:
            states = [await proc.call("state") for proc in procs]
            return all(cid in state for state in states)

        await wait_until(all_see_it, what="every process to show the new conversation")
        await leader.kill()
        survivors = [p for p in procs if p is not leader]
        sent = [
            await survivors[i % 2].call("send", cid=cid, body=f"during failover {i}")
            for i in range(10)
        ]
        await wait_until(lambda: _one_leader(survivors), timeout=10, what="a new leader")
        await wait_until(one_stream, timeout=15, what="one stream again")
        for proc in survivors:
            await proc.call("wait_synced")

        async def everyone_has_all() -> bool:
            for proc in survivors:
                msgs = (await proc.call("state"))[cid]["messages"]
                if sorted(msgs) != sorted(f"during failover {i}" for i in range(10)):
                    return False
            return True

        await wait_until(everyone_has_all, timeout=15, what="all messages in every process")
        assert len(sent) == 10
    finally:
        for proc in procs:
            await proc.quit()
        await server.stop()


async def _one_leader(procs: list[ClientProc]) -> bool:
    flags = [(await p.call("status"))["leader"] for p in procs]
    return flags.count(True) == 1


async def test_the_next_leader_sends_the_chain_the_dead_one_held(tmp_path: Path) -> None:
    (tmp_path / "srv").mkdir()
    add_users(tmp_path / "srv")
    server = await ServerProc(tmp_path / "srv").start()
    proxy = FaultProxy(upstream=("127.0.0.1", server.port)).start()
    device, runtime = tmp_path / "dev", tmp_path / "run"
    leader = await ClientProc(proxy.url, device, runtime, "alice").start()
    follower = await ClientProc(proxy.url, device, runtime, "alice").start()
    try:
        cid = await leader.call("create", title="zero")
        await leader.call("wait_synced")
        proxy.set_mode("blackhole")  # the leader's requests vanish: nothing is acknowledged
        proxy.cut()
        for title in ("one", "two", "three"):  # queued in the shared outbox by the follower
            await follower.call("rename", cid=cid, title=title)
        await leader.call("rename", cid=cid, title="four")
        await wait_until(lambda: _attempted(leader), timeout=10, what="the leader to try the chain")
        await leader.kill()  # kill -9 with the chain unacknowledged
        proxy.set_mode("pass")
        await wait_until(lambda: _is_leader(follower), timeout=10, what="the follower to lead")
        await follower.call("wait_synced", timeout=30)
        state = await follower.call("state")
        assert state[cid]["title"] == "four" and not state[cid]["pending"]
        assert (await follower.call("stats"))["outbox"] == 0
        async with httpx.AsyncClient(base_url=server.url + "/api/v1") as http:
            r = await http.post("/auth/token", json={"username": "alice", "password": PASSWORD})
            auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
            (conv,) = (await http.get("/conversations", headers=auth)).json()["conversations"]
        assert conv["title"] == "four"
    finally:
        await follower.quit()
        await leader.kill()
        proxy.stop()
        await server.stop()


async def _attempted(proc: ClientProc) -> bool:
    return any(e["attempts"] > 0 for e in await proc.call("outbox"))


async def _is_leader(proc: ClientProc) -> bool:
    return bool((await proc.call("status"))["leader"])
