"""Local stream transports behind one small interface: Unix sockets, and Windows named pipes.

``serve(factory)`` starts the hub's listener and returns an object with ``close()``;
``connect(factory)`` returns ``(transport, protocol)``; ``peer_ok(transport)`` says whether the
other end runs as our user; ``cleanup()`` removes what ``serve`` left on disk.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import struct
import sys
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)

ProtocolFactory = Callable[[], asyncio.Protocol]


class Transport(Protocol):
    address: str

    async def serve(self, factory: ProtocolFactory) -> Any: ...

    async def connect(self, factory: ProtocolFactory) -> tuple[asyncio.BaseTransport, Any]: ...

    def peer_ok(self, transport: asyncio.BaseTransport) -> bool: ...

    def still_ours(self) -> bool: ...

    def cleanup(self) -> None: ...


def peer_uid(sock: socket.socket) -> int | None:
    """The uid of a connected Unix socket's peer (Linux ``SO_PEERCRED``), else None."""
    opt = getattr(socket, "SO_PEERCRED", None)
    if opt is None:
        return None
    creds = sock.getsockopt(socket.SOL_SOCKET, opt, struct.calcsize("3i"))
    uid: int
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


class UnixTransport:
    """Unix stream socket in the scope's 0700 directory; the socket file itself is 0600."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._inode: int | None = None

    async def serve(self, factory: ProtocolFactory) -> asyncio.AbstractServer:
        # Bind under a temporary name, restrict it, listen, then atomically rename over the
        # (possibly stale) socket: a follower never finds a half-set-up socket. The caller
        # holds the leader lock, so replacing a stale socket is safe.
        directory = os.path.dirname(self.address)
        tmp = os.path.join(directory, f".hub-{secrets.token_hex(4)}.tmp")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(tmp)
            os.chmod(tmp, 0o600)
            sock.listen(128)
            sock.setblocking(False)
            server = await asyncio.get_running_loop().create_unix_server(factory, sock=sock)
        except BaseException:
            sock.close()
            _unlink(tmp)
            raise
        try:
            self._inode = os.stat(tmp).st_ino
            os.replace(tmp, self.address)
        except BaseException:
            server.close()
            _unlink(tmp)
            raise
        return server

    async def connect(self, factory: ProtocolFactory) -> tuple[asyncio.BaseTransport, Any]:
        return await asyncio.get_running_loop().create_unix_connection(factory, self.address)

    def peer_ok(self, transport: asyncio.BaseTransport) -> bool:
        sock = transport.get_extra_info("socket")
        if sock is None or not hasattr(os, "getuid"):
            return True
        try:
            uid = peer_uid(sock)
        except OSError:
            return False
        return uid is None or uid == os.getuid()

    def still_ours(self) -> bool:
        """True while the socket path is the socket ``serve`` created."""
        try:
            return self._inode is not None and os.stat(self.address).st_ino == self._inode
        except OSError:
            return False

    def cleanup(self) -> None:
        """Remove our socket file (only if it is still ours)."""
        if self._inode is None:
            return
        try:
            if os.stat(self.address).st_ino == self._inode:
                os.unlink(self.address)
        except OSError:
            pass
        self._inode = None


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class PipeTransport:  # pragma: no cover - Windows only; NOT tested in CI (no Windows runner)
    """Windows named pipe ``\\\\.\\pipe\\concord-bus-<hash>`` (ProactorEventLoop only).

    UNTESTED (no Windows runner). asyncio's ``start_serving_pipe`` creates the pipe with the
    default DACL (creator owner, SYSTEM, Administrators; Everyone read), so both ends check the
    other's user SID (:mod:`._winpeer`) and drop a connection from another user before any
    frame is sent. A DACL for the current user alone (``CreateNamedPipeW`` with security
    attributes) would also stop such a connection from being made at all: not done yet.
    """

    def __init__(self, address: str) -> None:
        self.address = address
        self._servers: list[Any] = []

    async def serve(self, factory: ProtocolFactory) -> Any:
        loop = asyncio.get_running_loop()
        # start_serving_pipe/create_pipe_connection: ProactorEventLoop only, not in its base type
        servers = await loop.start_serving_pipe(factory, self.address)  # type: ignore[attr-defined]
        self._servers = list(servers)
        return _PipeServer(self._servers)

    async def connect(self, factory: ProtocolFactory) -> tuple[asyncio.BaseTransport, Any]:
        loop = asyncio.get_running_loop()
        # ProactorEventLoop only (see serve)
        pair: tuple[asyncio.BaseTransport, Any]
        pair = await loop.create_pipe_connection(factory, self.address)  # type: ignore[attr-defined]
        return pair

    def peer_ok(self, transport: asyncio.BaseTransport) -> bool:
        from ._winpeer import same_user

        pipe = transport.get_extra_info("pipe")  # asyncio's PipeHandle
        handle = getattr(pipe, "handle", pipe)
        return handle is not None and same_user(int(handle))

    def still_ours(self) -> bool:
        return True

    def cleanup(self) -> None:
        self._servers = []


class _PipeServer:  # pragma: no cover - Windows only
    def __init__(self, servers: list[Any]) -> None:
        self._servers = servers

    def close(self) -> None:
        for server in self._servers:
            server.close()


def make_transport(address: str) -> UnixTransport | PipeTransport:
    if sys.platform == "win32":  # pragma: no cover
        return PipeTransport(address)
    return UnixTransport(address)
