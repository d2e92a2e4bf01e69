"""Server-sent events as tests read them: a strict parser of our wire format, a client over
httpx (``SSEStream``), and a raw-socket client that reads only when told to (``RawStream``)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

DEFAULT_TIMEOUT = 5.0

# --- strict SSE parsing --------------------------------------------------------------------------


class SSEProtocolError(AssertionError):
    """The server sent something that is not a well-formed event stream of ours."""


@dataclass(frozen=True)
class Event:
    type: str
    data: str
    id: str | None
    retry: int | None
    at: float = field(compare=False)

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass(frozen=True)
class Comment:
    text: str
    at: float = field(compare=False)


@dataclass(frozen=True)
class Closed:
    """End of the stream; ``error`` is set when it ended with a transport error."""

    at: float
    error: str | None = None


Item = Event | Comment | Closed


class SSEParser:
    """Incremental parser for ``text/event-stream`` (WHATWG HTML §9.2.6), strict about our wire
    format: UTF-8 only, only the ``event``/``data``/``id``/``retry`` fields, numeric ``retry``,
    every event has a type and data, and the stream must not end in the middle of an event."""

    FIELDS = frozenset({"event", "data", "id", "retry"})

    def __init__(self) -> None:
        self._buf = b""
        self._first = True
        self._reset_event()

    def _reset_event(self) -> None:
        self._type: str | None = None
        self._data: list[str] | None = None
        self._id: str | None = None
        self._retry: int | None = None
        self._dirty = False

    def feed(self, chunk: bytes) -> list[Event | Comment]:
        self._buf += chunk
        out: list[Event | Comment] = []
        while True:
            cut = _line_end(self._buf)
            if cut is None:
                return out
            end, nxt = cut
            raw, self._buf = self._buf[:end], self._buf[nxt:]
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SSEProtocolError(f"line is not UTF-8: {raw[:80]!r}") from exc
            if self._first:
                line = line.removeprefix("\ufeff")
                self._first = False
            item = self._line(line)
            if item is not None:
                out.append(item)

    def _line(self, line: str) -> Event | Comment | None:
        now = time.monotonic()
        if line == "":
            return self._dispatch(now)
        if line.startswith(":"):
            return Comment(line[1:].removeprefix(" "), now)
        name, sep, value = line.partition(":")
        value = value.removeprefix(" ") if sep else ""
        if name not in self.FIELDS:
            raise SSEProtocolError(f"unknown SSE field {name!r} in line {line[:80]!r}")
        self._dirty = True
        if name == "event":
            self._type = value
        elif name == "data":
            self._data = [*(self._data or []), value]
        elif name == "id":
            if "\0" in value:
                raise SSEProtocolError("id contains NUL")
            self._id = value
        else:
            if not (value.isascii() and value.isdigit()):
                raise SSEProtocolError(f"retry is not a number: {value!r}")
            self._retry = int(value)
        return None

    def _dispatch(self, now: float) -> Event | None:
        if not self._dirty:
            return None
        if self._data is None:
            if self._type is not None or self._id is not None:
                raise SSEProtocolError(f"event {self._type!r} without data")
            self._reset_event()  # a bare ``retry:`` block
            return None
        if self._type is None:
            raise SSEProtocolError(f"event without a type: {self._data!r}")
        event = Event(self._type, "\n".join(self._data), self._id, self._retry, now)
        self._reset_event()
        return event

    def finish(self) -> list[Event | Comment]:
        """Call at end of stream: the last items (a final CR ends a line), or a failure when the
        stream ends inside a line or an event."""
        out: list[Event | Comment] = []
        if self._buf.endswith(b"\r") and b"\r" not in self._buf[:-1] and b"\n" not in self._buf:
            self._buf = self._buf[:-1] + b"\n"
            out = self.feed(b"")
        if self._buf:
            raise SSEProtocolError(f"stream ended inside a line: {self._buf[:80]!r}")
        if self._dirty:
            raise SSEProtocolError("stream ended inside an event (no blank line)")
        return out


def _line_end(buf: bytes) -> tuple[int, int] | None:
    """Where the first line of ``buf`` ends (CRLF, LF or CR) and the next begins."""
    lf, cr = buf.find(b"\n"), buf.find(b"\r")
    if cr == -1 and lf == -1:
        return None
    if cr == -1 or (lf != -1 and lf < cr):
        return lf, lf + 1
    if cr + 1 == len(buf):
        return None  # a CR at the end: wait to see whether an LF follows
    return cr, cr + (2 if buf[cr + 1 : cr + 2] == b"\n" else 1)


# --- SSE client over httpx -----------------------------------------------------------------------


class SSEStream:
    """An open ``GET /events`` on an ``httpx.AsyncClient``: a task parses it into a queue."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.items: list[Item] = []  # everything read so far, in order
        self.raw = bytearray()
        self._queue: asyncio.Queue[Item] = asyncio.Queue()
        self._task = asyncio.create_task(self._pump())
        self.hello: dict[str, Any] | None = None

    async def _pump(self) -> None:
        parser = SSEParser()
        try:
            async for chunk in self.response.aiter_raw():
                self.raw += chunk
                for item in parser.feed(chunk):
                    self._queue.put_nowait(item)
            for item in parser.finish():
                self._queue.put_nowait(item)
            self._queue.put_nowait(Closed(time.monotonic()))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._queue.put_nowait(Closed(time.monotonic(), repr(exc)))

    async def next(self, timeout: float = DEFAULT_TIMEOUT) -> Item:
        try:
            item = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"no SSE item within {timeout}s; so far: {self._summary()}"
            ) from None
        self.items.append(item)
        return item

    async def event(self, timeout: float = DEFAULT_TIMEOUT) -> Event:
        """The next event, skipping comments; fails if the stream ends."""
        deadline = time.monotonic() + timeout
        for _ in range(100_000):
            item = await self.next(max(0.0, deadline - time.monotonic()))
            if isinstance(item, Event):
                return item
            if isinstance(item, Closed):
                raise AssertionError(f"stream closed ({item.error}); so far: {self._summary()}")
        raise AssertionError("too many comments")

    async def expect(self, type_: str, timeout: float = DEFAULT_TIMEOUT) -> Event:
        event = await self.event(timeout)
        assert event.type == type_, f"expected {type_!r}, got {event}; so far: {self._summary()}"
        return event

    async def changes(self, n: int, timeout: float = DEFAULT_TIMEOUT) -> list[Event]:
        """The next ``n`` events, all of which must be ``change`` events."""
        deadline = time.monotonic() + timeout
        return [
            await self.expect("change", max(0.0, deadline - time.monotonic())) for _ in range(n)
        ]

    async def comment(self, timeout: float = DEFAULT_TIMEOUT) -> Comment:
        """The next item, which must be a comment."""
        item = await self.next(timeout)
        assert isinstance(item, Comment), f"expected a comment, got {item}"
        return item

    async def closed(self, timeout: float = DEFAULT_TIMEOUT) -> Closed:
        """The stream must end cleanly (comments allowed) with no further event."""
        deadline = time.monotonic() + timeout
        for _ in range(100_000):
            item = await self.next(max(0.0, deadline - time.monotonic()))
            if isinstance(item, Closed):
                assert item.error is None, f"stream ended with an error: {item.error}"
                return item
            assert isinstance(item, Comment), f"expected the stream to end, got {item}"
        raise AssertionError("too many comments")

    def _summary(self) -> str:
        return ", ".join(
            i.type if isinstance(i, Event) else "comment" if isinstance(i, Comment) else "closed"
            for i in self.items[-20:]
        )

    async def aclose(self) -> None:
        if not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self.response.aclose()


# --- raw-socket SSE client -----------------------------------------------------------------------


class RawStream:
    """``GET /events`` over a plain non-blocking socket: reads only when told to, so the
    server sees a consumer that does not drain its stream. A small receive buffer keeps the
    kernel from absorbing much on the client's behalf."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self._raw = b""  # undecoded bytes after the header block
        self._parser = SSEParser()
        self.items: list[Item] = []
        self.eof = False
        self._chunk_left = 0  # bytes left in the current chunk (chunked transfer encoding)
        self._chunk_crlf = False  # a chunk's data ended; its CRLF is next
        self._body_done = False

    @classmethod
    async def connect(cls, host: str, port: int, rcvbuf: int = 4096) -> RawStream:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.sock_connect(sock, (host, port)), DEFAULT_TIMEOUT)
        except BaseException:
            sock.close()
            raise
        return cls(sock)

    async def send_request(self, path: str, headers: dict[str, str]) -> None:
        host, port = self.sock.getpeername()[:2]
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Accept: text/event-stream"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        loop = asyncio.get_running_loop()
        await loop.sock_sendall(self.sock, ("\r\n".join(lines) + "\r\n\r\n").encode())

    @classmethod
    async def open(
        cls, host: str, port: int, path: str, headers: dict[str, str], rcvbuf: int = 4096
    ) -> RawStream:
        stream = await cls.connect(host, port, rcvbuf)
        await stream.send_request(path, headers)
        return stream

    async def _recv(self, timeout: float) -> bytes:
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.sock_recv(self.sock, 65536), timeout)
        except TimeoutError:
            raise AssertionError(f"raw stream: nothing received within {timeout}s") from None

    async def read_headers(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        buf = b""
        for _ in range(10_000):
            if b"\r\n\r\n" in buf:
                break
            data = await self._recv(max(0.0, deadline - time.monotonic()))
            assert data, "connection closed before the response headers"
            buf += data
        head, _, self._raw = buf.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split(" ")[1])
        for line in header_lines:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        if self.status == 200:
            assert self.headers.get("transfer-encoding") == "chunked", self.headers
            self._consume()  # the first events may have come with the headers

    def _decode_chunks(self) -> bytes:
        """Strip chunked transfer-encoding framing from what has arrived so far."""
        out = b""
        for _ in range(1_000_000):
            if self._body_done:
                assert not self._raw, f"bytes after the last chunk: {self._raw[:80]!r}"
                break
            if self._chunk_left:
                take = self._raw[: self._chunk_left]
                out += take
                self._raw = self._raw[len(take) :]
                self._chunk_left -= len(take)
                if self._chunk_left:
                    break
                self._chunk_crlf = True
                continue
            if self._chunk_crlf:  # the CRLF that ends a chunk's data
                if len(self._raw) < 2:
                    break
                assert self._raw.startswith(b"\r\n"), f"bad chunk end: {self._raw[:20]!r}"
                self._raw = self._raw[2:]
                self._chunk_crlf = False
            size_line, sep, rest = self._raw.partition(b"\r\n")
            if not sep:
                break
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                if not rest.startswith(b"\r\n"):
                    break  # wait for the final CRLF
                self._raw = rest[2:]
                self._body_done = True
                continue
            self._raw = rest
            self._chunk_left = size
        return out

    def _consume(self) -> list[Item]:
        new: list[Item] = list(self._parser.feed(self._decode_chunks()))
        if self._body_done and not self.eof:
            new.extend(self._parser.finish())
            self.eof = True
            new.append(Closed(time.monotonic()))
        self.items.extend(new)
        return new

    async def read_some(self, timeout: float = DEFAULT_TIMEOUT) -> list[Item]:
        """Read what is available (one recv) and parse it. The stream has ended when its last
        chunk has arrived (the connection itself may stay open for keep-alive)."""
        assert not self.eof, "read past the end of the stream"
        data = await self._recv(timeout)
        assert data, "connection closed before the final chunk"
        self._raw += data
        return self._consume()

    async def read_until_eof(self, timeout: float = 10.0) -> list[Item]:
        deadline = time.monotonic() + timeout
        for _ in range(1_000_000):
            if self.eof:
                return self.items
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"raw stream did not end within {timeout}s"
            await self.read_some(remaining)
        raise AssertionError("unbounded raw stream")

    async def read_until_event(self, type_: str, timeout: float = DEFAULT_TIMEOUT) -> Event:
        deadline = time.monotonic() + timeout
        seen = 0
        for _ in range(1_000_000):
            for item in self.items[seen:]:
                if isinstance(item, Event) and item.type == type_:
                    return item
            seen = len(self.items)
            assert not self.eof, f"raw stream ended before {type_!r}"
            await self.read_some(max(0.001, deadline - time.monotonic()))
        raise AssertionError("unbounded raw stream")

    def close(self) -> None:
        self.sock.close()
