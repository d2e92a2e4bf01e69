"""Security and robustness: permissions, scope isolation, other users, hostile frames."""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import pwd
import socket
import stat
import struct
import time

import pytest

from core.bus import BroadcastChannel, LocalBus
from core.bus import _hub as hub_module
from tests.support.bus import Buses, fence, listen
from tests.support.bus_child import Child
from tests.support.waiting import wait_until

MiB = 1 << 20


def frame(obj: object) -> bytes:
    body = obj if isinstance(obj, bytes) else json.dumps(obj, separators=(",", ":")).encode()
    return struct.pack(">I", len(body)) + body


def hello(member: str = "raw-1", **over: object) -> bytes:
    h = {"k": "hello", "e": 0, "v": 1, "m": member, "pid": 1, "le": 0, "ls": 0, "p": []}
    h.update(over)
    return frame(h)


async def read_frame(reader: asyncio.StreamReader) -> dict:
    (n,) = struct.unpack(">I", await reader.readexactly(4))
    return json.loads(await reader.readexactly(n))


async def raw(bus: LocalBus) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    assert bus.paths is not None
    return await asyncio.open_unix_connection(bus.paths.address)


async def dropped(reader: asyncio.StreamReader, timeout: float = 5.0) -> bool:
    """True once the hub closed the connection (reads and discards until EOF)."""
    async with asyncio.timeout(timeout):
        try:
            while await reader.read(65536):
                pass
        except ConnectionResetError:
            pass
    return True


async def test_directory_is_0700_and_socket_files_0600(buses: Buses) -> None:
    bus = await buses.open()
    assert bus.paths is not None
    assert stat.S_IMODE(os.lstat(bus.paths.directory).st_mode) == 0o700
    sock = os.lstat(bus.paths.address)
    assert stat.S_ISSOCK(sock.st_mode) and stat.S_IMODE(sock.st_mode) == 0o600
    for path in (bus.paths.lock, bus.paths.epoch):
        assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
    assert buses.scope not in str(bus.paths.directory)  # the scope name is hashed
    assert len(os.fsencode(bus.paths.address)) < 100


async def test_existing_loose_directory_is_tightened(buses: Buses, runtime_dir: str) -> None:
    from core.bus._runtime import scope_key

    loose = os.path.join(runtime_dir, scope_key(buses.scope))
    os.mkdir(loose, 0o755)
    os.chmod(loose, 0o755)
    bus = await buses.open()
    assert bus.cross_process
    assert stat.S_IMODE(os.lstat(loose).st_mode) == 0o700


async def test_scopes_are_isolated(buses: Buses, children: list[Child]) -> None:
    a1, a2 = await buses.open("scope-A"), await buses.open("scope-A")
    b1 = await buses.open("scope-B")
    assert a1.paths != b1.paths
    other = await Child.spawn("scope-B", buses.runtime_dir, "b-child", channels="x")
    children.append(other)
    ca1, ca2, cb1 = (BroadcastChannel("x", bus=b) for b in (a1, a2, b1))
    ra2, rb1 = listen(ca2), listen(cb1)
    ca1.post_message({"secret": "for scope A only"})
    await ra2.wait(1)
    BroadcastChannel("x", bus=b1).post_message("fence-B")
    await rb1.wait(1)
    await other.wait("message", lambda e: e["data"] == "fence-B")
    assert rb1.data == ["fence-B"]
    assert not [e for e in other.events if e["ev"] == "message" and e["data"] != "fence-B"]
    assert b1.is_leader and a1.is_leader and not a2.is_leader


def _connect_as(uid: int, gid: int, path: str, payload: bytes) -> str:
    """Fork; the child switches to ``uid`` and tries the hub. Returns what it observed."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: no asyncio, no pytest; just syscalls, then _exit
        result = "error"
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            try:
                s.connect(path)
            except PermissionError:
                result = "denied"
            else:
                try:
                    s.sendall(payload)
                    result = "welcomed" if s.recv(65536) else "refused"
                except (BrokenPipeError, ConnectionResetError):
                    result = "refused"
        except BaseException as exc:  # report, never raise in the forked child
            result = f"error {exc!r}"
        finally:
            os.write(w, result.encode())
            os._exit(0)
    os.close(w)
    try:
        return os.read(r, 1000).decode()
    finally:
        os.close(r)
        os.waitpid(pid, 0)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")
async def test_another_user_is_refused(
    buses: Buses, runtime_dir: str, caplog: pytest.LogCaptureFixture
) -> None:
    bus = await buses.open()
    assert bus.paths is not None
    nobody = pwd.getpwnam("nobody")
    path = bus.paths.address
    loop = asyncio.get_running_loop()
    attempt = (nobody.pw_uid, nobody.pw_gid, path, hello("intruder-1"))
    # 1. The 0700 directory alone keeps other users out.
    assert await loop.run_in_executor(None, _connect_as, *attempt) == "denied"
    # 2. Even with the directory and socket opened up, SO_PEERCRED refuses them.
    os.chmod(runtime_dir, 0o711)
    os.chmod(bus.paths.directory, 0o711)
    os.chmod(path, 0o666)
    assert await loop.run_in_executor(None, _connect_as, *attempt) == "refused"
    assert "another user" in caplog.text
    assert bus.members() == [bus.member_id]
    # ... while our own uid still gets in.
    uid, gid = os.getuid(), os.getgid()
    assert await loop.run_in_executor(None, _connect_as, uid, gid, path, hello()) == "welcomed"


HOSTILE = {
    "garbage": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "huge-length": struct.pack(">I", 0xFFFFFFFF) + b"{}",
    "over-1MiB": struct.pack(">I", MiB + 1) + b"{",
    "zero-length": struct.pack(">I", 0),
    "not-json": frame(b"\x00\x01not json at all"),
    "json-not-object": frame([1, 2, 3]),
    "wrong-version": hello(v=2),
    "unknown-kind": frame({"k": "pwn", "e": 0, "v": 1}),
    "post-before-hello": frame({"k": "m", "e": 1, "v": 1, "c": "x", "id": 1, "t": 0, "d": 1}),
    "bad-member-id": hello('a"b'),
    "extra-field": hello(s=99),
    "post-too-large-to-stamp": hello(p=[])
    + frame(b'{"k":"m","e":1,"v":1,"c":"x","id":1,"t":0,"d":"' + b"x" * (MiB - 100) + b'"}'),
    "deep-nesting": hello(p=[])
    + frame(b'{"k":"m","e":1,"v":1,"c":"x","id":1,"t":0,"d":' + b"[" * 5000 + b"]" * 5000 + b"}"),
}


@pytest.mark.parametrize("payload", list(HOSTILE.values()), ids=list(HOSTILE))
async def test_hostile_input_is_dropped_and_the_bus_keeps_working(
    buses: Buses, payload: bytes
) -> None:
    a, b = await buses.open(), await buses.open()
    ca, cb = BroadcastChannel("x", bus=a), BroadcastChannel("x", bus=b)
    ra, rb = listen(ca), listen(cb)
    reader, writer = await raw(a)
    writer.write(payload)
    await writer.drain()
    assert await dropped(reader)
    writer.close()
    await fence(ca, rb)
    await fence(cb, ra)
    assert ra.data == rb.data == ["__fence__"]
    assert a.members() == b.members() == [a.member_id, b.member_id]


async def test_spoofed_or_stale_frames_after_hello_are_refused(buses: Buses) -> None:
    a, b = await buses.open(), await buses.open()
    rb = listen(BroadcastChannel("x", bus=b))
    cases = [
        {"k": "m", "e": a.epoch, "v": 1, "c": "x", "id": 1, "t": 0, "d": 1, "s": 999},
        {"k": "m", "e": a.epoch, "v": 1, "c": "x", "id": 1, "t": 0, "d": 1, "src": "victim"},
        {"k": "m", "e": a.epoch - 1, "v": 1, "c": "x", "id": 1, "t": 0, "d": "old epoch"},
        {"k": "hello", "e": a.epoch, "v": 1, "m": "again", "pid": 1, "le": 0, "ls": 0},
    ]
    for i, case in enumerate(cases):
        reader, writer = await raw(a)
        writer.write(hello(f"spoof-{i}"))
        assert (await read_frame(reader))["k"] == "welcome"
        writer.write(frame(case))
        assert await dropped(reader)
        writer.close()
    await fence(BroadcastChannel("x", bus=a), rb)
    assert rb.data == ["__fence__"]


async def test_truncated_frame_then_disconnect(buses: Buses) -> None:
    a, b = await buses.open(), await buses.open()
    rb = listen(BroadcastChannel("x", bus=b))
    reader, writer = await raw(a)
    writer.write(hello() + struct.pack(">I", 100) + b'{"k":"m","e"')
    assert (await read_frame(reader))["k"] == "welcome"
    writer.close()
    await fence(BroadcastChannel("x", bus=a), rb)
    assert rb.data == ["__fence__"]


async def test_undecodable_data_fires_messageerror_on_receivers_only(buses: Buses) -> None:
    a, b = await buses.open(), await buses.open()
    ca, cb, other = (BroadcastChannel(n, bus=bus) for n, bus in (("x", a), ("x", b), ("y", b)))
    msgs = [listen(ch) for ch in (ca, cb, other)]
    errs = [listen(ch, "messageerror") for ch in (ca, cb, other)]
    reader, writer = await raw(a)
    welcome_and_bad = hello() + frame(
        b'{"e":%d,"v":1,"k":"m","c":"x","id":1,"t":%d,"d":"\xff\xfe invalid utf-8"}'
        % (a.epoch, time.monotonic_ns())
    )
    writer.write(welcome_and_bad)
    assert (await read_frame(reader))["k"] == "welcome"
    await errs[0].wait(1)
    await errs[1].wait(1)
    assert "undecodable" in (errs[1].events[0].error or "")
    assert errs[1].events[0].data is None and errs[1].events[0].sender == "raw-1"
    writer.write(
        frame(
            b'{"e":%d,"v":1,"k":"m","c":"x","id":2,"t":%d,"d":"fine"}'
            % (a.epoch, time.monotonic_ns())
        )
    )
    await msgs[0].wait(1)
    await msgs[1].wait(1)
    assert msgs[0].data == msgs[1].data == ["fine"]  # the connection was kept
    assert msgs[2].events == errs[2].events == []
    writer.close()


@pytest.mark.parametrize("limit", ["buffer", "stall"])
async def test_follower_that_never_reads_is_dropped(
    buses: Buses, monkeypatch: pytest.MonkeyPatch, limit: str
) -> None:
    if limit == "buffer":
        monkeypatch.setattr(hub_module, "MAX_BUFFERED", 256 * 1024)
    else:
        monkeypatch.setattr(hub_module, "STALL_S", 0.3)
    a, b = await buses.open(), await buses.open()
    ca, cb = BroadcastChannel("x", bus=a), BroadcastChannel("x", bus=b)
    rb = listen(cb)
    reader, writer = await raw(a)
    writer.write(hello("sloth-1"))
    assert (await read_frame(reader))["k"] == "welcome"
    await wait_until(lambda: "sloth-1" in a.members(), "the sloth to join", timeout=5)
    blob = "x" * 60_000
    for i in range(40):  # ~2.4 MB: more than the kernel buffers and the limit
        ca.post_message([i, blob])
        await asyncio.sleep(0)
    await rb.wait(40, timeout=10)
    cb.post_message("from b while the sloth blocks")  # b's ack must not wait forever
    await wait_until(lambda: "sloth-1" not in a.members(), "the sloth to be dropped", timeout=10)
    session = b._session
    assert session is not None
    await wait_until(lambda: not session.outbox, "b's outbox to drain", timeout=5)
    assert [d[0] for d in rb.data] == list(range(40))
    writer.close()


def test_unix_peer_check_compares_the_real_peer_uid_with_ours(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SO_PEERCRED on a real connected socket pair gives our uid; a peer whose uid is not ours
    (here: our uid made to look different) is refused, and so is a socket it cannot ask."""
    from core.bus._transport import UnixTransport, peer_uid

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)

    class Conn:
        def __init__(self, sock: socket.socket) -> None:
            self.sock = sock

        def get_extra_info(self, name: str) -> socket.socket | None:
            return self.sock if name == "socket" else None

    transport = UnixTransport("/nonexistent/hub.sock")
    try:
        uid = os.getuid()
        assert peer_uid(ours) == uid and peer_uid(theirs) == uid
        assert transport.peer_ok(Conn(ours)) is True  # type: ignore[arg-type]
        monkeypatch.setattr(os, "getuid", lambda: uid + 1)
        assert transport.peer_ok(Conn(ours)) is False  # type: ignore[arg-type]
        monkeypatch.undo()
    finally:
        ours.close()
        theirs.close()
    # Closed: its peer cannot be asked, so it is refused.
    assert transport.peer_ok(Conn(ours)) is False  # type: ignore[arg-type]


class FakeKernel32:
    """The two named-pipe calls ``same_user`` makes, answering with given process ids."""

    def __init__(self, client_pid: int, server_pid: int, ok: bool = True) -> None:
        self.pids = {"client": client_pid, "server": server_pid}
        self.ok = ok

    def _answer(self, end: str, out: object) -> int:
        out._obj.value = self.pids[end]  # type: ignore[attr-defined]  # ctypes.byref(ULONG)
        return int(self.ok)

    def GetNamedPipeClientProcessId(self, handle: int, out: object) -> int:
        return self._answer("client", out)

    def GetNamedPipeServerProcessId(self, handle: int, out: object) -> int:
        return self._answer("server", out)


@pytest.mark.parametrize(
    ("client", "server", "peer_sid", "want"),
    [
        ("peer", "me", "our-sid", True),  # we serve; the client runs as our user
        ("peer", "me", "their-sid", False),  # we serve; the client is another user
        ("me", "peer", "our-sid", True),  # we are the client; the hub is ours
        ("me", "peer", "their-sid", False),  # we are the client; someone else took the name
        ("peer", "me", None, False),  # the peer process is gone: cannot tell, refused
    ],
)
def test_windows_peer_check_compares_the_other_ends_user(
    monkeypatch: pytest.MonkeyPatch, client: str, server: str, peer_sid: str | None, want: bool
) -> None:
    """``same_user``'s decision with the Win32 calls answered by fakes (the real API is
    untested here: no Windows runner): it asks about the other end of the pipe, whichever end
    we are, and says True only for a process of our user."""
    from core.bus import _winpeer

    me, peer = os.getpid(), os.getpid() + 1
    pids = {"me": me, "peer": peer}
    sids = {me: b"our-sid"} | ({peer: peer_sid.encode()} if peer_sid else {})

    def user_sid(pid: int) -> bytes:
        if pid not in sids:
            raise OSError(87, "no such process")
        return sids[pid]

    monkeypatch.setattr(_winpeer, "_api", lambda: (FakeKernel32(pids[client], pids[server]), None))
    monkeypatch.setattr(_winpeer, "_user_sid", user_sid)
    assert _winpeer.same_user(7) is want


def test_windows_peer_check_fails_closed_where_it_cannot_tell(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The named-pipe check refuses a peer whose user it cannot establish: the pipe query fails,
    or there is no Win32 API at all (as on this platform); so does a transport with no pipe."""
    from core.bus import _winpeer
    from core.bus._transport import PipeTransport

    if not hasattr(ctypes, "WinDLL"):
        assert _winpeer.same_user(1234) is False  # no Win32 API: the real call, refused
    me = os.getpid()
    monkeypatch.setattr(_winpeer, "_api", lambda: (FakeKernel32(me, me, ok=False), None))
    monkeypatch.setattr(_winpeer, "_check", lambda ok: None if ok else _raise(OSError(5)))
    monkeypatch.setattr(_winpeer, "_user_sid", lambda pid: b"our-sid")
    assert _winpeer.same_user(7) is False  # the query failed: even "ourselves" is refused

    class NoPipe:
        def get_extra_info(self, name: str) -> None:
            return None

    assert PipeTransport(r"\\.\pipe\concord-test").peer_ok(NoPipe()) is False  # type: ignore[arg-type]


def _raise(exc: BaseException) -> None:
    raise exc
