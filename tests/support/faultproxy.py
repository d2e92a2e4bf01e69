"""A fault-injecting TCP proxy for end-to-end sync tests: its own asyncio loop in a daemon
thread, an ephemeral 127.0.0.1 port, thread-safe synchronous control (when ``cut()`` or
``set_mode()`` returns, the proxy thread has applied it). A blackholed connection never forwards
again (a dead path: the client must time out and reconnect). ``html``/``http_error`` answer new
connections and the next request that starts on an open keep-alive connection. ``drop_answers``
forwards requests as usual, but when the answer to a chosen one (by default any POST, PUT, PATCH
or DELETE) starts coming back, throws it away and resets the connection: the server did the
work, the client never learns it (the mode when the answer arrives is the one that counts).
``cut_after(marker)`` cuts an event stream at an exact event: the answer bytes holding ``marker``
are forwarded up to the end of that SSE event, then the connection is closed."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import random
import re
import socket
import struct
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")
MODES = ("pass", "refuse", "blackhole", "delay", "html", "http_error", "drop_answers")
FAULT_KINDS = ("cut", "blackhole", "delay", "html", "refuse", "http_error", "drop_answers")
MUTATING = ("POST", "PUT", "PATCH", "DELETE")
_ANSWER_MODES = ("html", "http_error")
_CHUNK = 65536
_SO_LINGER, _RST = socket.SO_LINGER, struct.pack("ii", 1, 0)  # linger 0: close() sends RST
_Fault = tuple[float, str, float, float]  # gap, kind, duration, delay
_HTML = b"<!doctype html><html><body><h1>Sign in to continue</h1></body></html>"
_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")
_CUT = b"-cut-"  # queued after the last bytes to forward: close the connection there


def mutating(request_line: str) -> bool:
    """``drop_answers``' default choice: a request line ``"METHOD /path"`` that changes
    something (POST, PUT, PATCH, DELETE)."""
    return request_line.split(" ", 1)[0] in MUTATING


@dataclass
class Stats:
    """Counters; ``FaultProxy.stats`` returns a snapshot copy."""

    accepted: int = 0  # connections accepted (in any mode)
    refused: int = 0  # closed right after accept in ``refuse`` mode
    blackholed: int = 0  # new connections swallowed in ``blackhole`` mode
    answered: int = 0  # canned ``html``/``http_error`` responses sent
    cut: int = 0  # connections closed by ``cut()``
    upstream_failed: int = 0  # upstream connect failures
    bytes_up: int = 0  # client -> upstream, forwarded
    bytes_down: int = 0  # upstream -> client, forwarded
    requests: Counter[str] = field(default_factory=Counter)  # "GET /path" forwarded upstream
    dropped: Counter[str] = field(default_factory=Counter)  # "POST /path": answer dropped


class _RequestLines:
    """Finds request lines at HTTP/1.1 message starts in the client->server bytes, skipping
    bodies by Content-Length; gives up (``opaque``) on chunked bodies, upgrades, garbage."""

    def __init__(self) -> None:
        self.buf, self.body_left, self.opaque = b"", 0, False

    @property
    def at_start(self) -> bool:
        return not self.opaque and not self.body_left and not self.buf

    def feed(self, data: bytes) -> list[str]:
        found: list[str] = []
        while data and not self.opaque:
            if self.body_left:
                n = min(self.body_left, len(data))
                self.body_left, data = self.body_left - n, data[n:]
                continue
            self.buf, data = (self.buf + data).lstrip(b"\r\n"), b""
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                self.opaque = len(self.buf) > _CHUNK
                break
            head, data, self.buf = self.buf[:end], self.buf[end + 4 :], b""
            lines = head.split(b"\r\n")
            parts = lines[0].split(b" ")
            if len(parts) != 3 or not parts[2].startswith(b"HTTP/1.") or parts[0] == b"CONNECT":
                self.opaque = True
                break
            found.append(f"{parts[0].decode('latin-1')} {parts[1].decode('latin-1')}".split("?")[0])
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name, value = name.strip().lower(), value.strip().lower()
                if name == b"content-length" and value.isdigit():
                    self.body_left = int(value)
                elif name in (b"transfer-encoding", b"upgrade") or name == b"content-length":
                    self.opaque = True
        return found


@dataclass(frozen=True)
class _Mode:
    name: str = "pass"
    delay_s: float = 0.3
    status: int = 503
    body: bytes | None = None
    drop_if: Callable[[str], bool] = mutating


class _Takeover(Exception):
    """A new request started on an open connection while an answering mode is on."""


class _Conn:
    def __init__(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        self.cr, self.cw = cr, cw
        self.task: asyncio.Task[Any] = asyncio.current_task()  # type: ignore[assignment]
        self.ur: asyncio.StreamReader | None = None
        self.uw: asyncio.StreamWriter | None = None
        self.blackholed = self.failed = False  # sticky: never forward again
        self.parser = _RequestLines()
        self.awaiting: str | None = None  # the last request forwarded, until its answer starts
        self.down_seen = b""  # answer bytes kept while a cut_after marker is looked for

    def close(self, rst: bool = False) -> None:
        for w in (self.cw, self.uw):
            if w is not None and rst:  # abort() also drops what a closing transport still holds
                with contextlib.suppress(OSError, AttributeError):
                    w.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, _SO_LINGER, _RST)
                w.transport.abort()
            elif w is not None:
                w.close()


class FaultProxy:
    """TCP proxy to ``upstream`` with switchable faults; see the module docstring."""

    def __init__(self, upstream: tuple[str, int], host: str = "127.0.0.1") -> None:
        self.upstream, self.host, self.port = upstream, host, 0
        self._mode, self._stats, self._lock = _Mode(), Stats(), threading.Lock()
        self._conns: set[_Conn] = set()
        self._cut_marker: bytes | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready, self._error = threading.Event(), None
        self._thread = threading.Thread(target=self._run, name="faultproxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def mode(self) -> str:
        return self._mode.name

    @property
    def stats(self) -> Stats:
        with self._lock:
            counters = {"requests": self._stats.requests, "dropped": self._stats.dropped}
            return Stats(**{**self._stats.__dict__, **{k: Counter(v) for k, v in counters.items()}})

    def start(self, timeout: float = 5.0) -> FaultProxy:
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None:
            raise RuntimeError(f"fault proxy did not start: {self._error!r}")
        return self

    def set_mode(
        self,
        mode: str,
        *,
        delay_s: float = 0.3,
        status: int = 503,
        body: bytes | None = None,
        drop_if: Callable[[str], bool] = mutating,
    ) -> None:
        """Switch mode; ``delay_s`` is for ``delay``, ``status``/``body`` for ``http_error``,
        ``drop_if`` for ``drop_answers``: which requests (by their line ``"METHOD /path"``,
        without the query) lose their answer; it runs in the proxy thread."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        self._call(lambda: self._apply_mode(_Mode(mode, delay_s, status, body, drop_if)))

    def cut(self, rst: bool = True) -> int:
        """Close every open connection now (RST unless ``rst=False``); returns how many."""
        return self._call(lambda: self._cut_all(rst))

    def cut_after(self, marker: bytes) -> None:
        """Arm a one-shot cut: the first answer that contains ``marker`` is forwarded up to the
        end of the SSE event holding it (the next blank line), then its connection is closed
        (FIN, after every forwarded byte went out) and counts in ``stats.cut``."""
        if not marker:
            raise ValueError("an empty marker")
        self._call(lambda: setattr(self, "_cut_marker", marker))

    @property
    def cut_armed(self) -> bool:
        """A ``cut_after`` marker has not been met yet."""
        return self._call(lambda: self._cut_marker is not None)

    def random_faults(
        self,
        rng: random.Random,
        n: int = 50,
        min_gap_s: float = 0.05,
        max_gap_s: float = 0.5,
        kinds: Sequence[str] = ("cut", "blackhole", "delay", "html", "refuse"),
        dur_s: tuple[float, float] = (0.05, 0.5),
        delay_s: tuple[float, float] = (0.05, 0.3),
        drop_if: Callable[[str], bool] = mutating,
    ) -> list[tuple[str, float]]:
        """Run ``n`` random faults (drawn now from ``rng``: seeds reproduce) in the proxy thread:
        a gap, then the fault for a duration from ``dur_s`` (``cut`` is instant), then ``pass``.
        Blocks until done or stop(); returns the ``(kind, duration)`` faults applied. From async
        code, run it with ``asyncio.to_thread``. ``drop_if`` is as for ``set_mode``."""
        if set(kinds) - set(FAULT_KINDS) or not kinds or not 0 <= min_gap_s <= max_gap_s:
            raise ValueError("bad random_faults arguments")
        plan: list[_Fault] = []
        for _ in range(min(n, 10_000)):
            gap, kind = rng.uniform(min_gap_s, max_gap_s), rng.choice(list(kinds))
            dur = 0.0 if kind == "cut" else rng.uniform(*dur_s)
            plan.append((gap, kind, dur, rng.uniform(*delay_s)))
        assert self._loop is not None, "start() the proxy first"
        done: list[tuple[str, float]] = []
        fut = asyncio.run_coroutine_threadsafe(self._run_faults(plan, done, drop_if), self._loop)
        with contextlib.suppress(concurrent.futures.CancelledError):
            fut.result(timeout=sum(p[0] + p[2] for p in plan) + 5)
        return done

    def stop(self, timeout: float = 2.0) -> None:
        """Close everything and join the thread (bounded by ``timeout``)."""
        with contextlib.suppress(RuntimeError, AttributeError):  # not started / loop closed
            self._loop.call_soon_threadsafe(self._stopping.set)  # type: ignore[union-attr]
        if self._thread.is_alive():
            self._thread.join(timeout)

    def __enter__(self) -> FaultProxy:
        return self.start() if not self._thread.is_alive() else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, fn: Callable[[], T], timeout: float = 2.0) -> T:
        """Run ``fn`` in the proxy loop and wait for it; inline if the proxy is not running."""
        loop = self._loop
        if loop is None or not self._thread.is_alive() or loop.is_closed():
            return fn()

        async def run() -> T:
            return fn()

        try:
            return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout)
        except RuntimeError:  # the loop closed meanwhile
            return fn()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._on_client, self.host, 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:  # asyncio.run() then cancels and awaits whatever is left
            server.close()
            self._cut_all(rst=True, count=False)

    def _apply_mode(self, mode: _Mode) -> None:
        self._mode = mode
        if mode.name == "blackhole":
            for conn in self._conns:
                conn.blackholed = True

    def _bump(self, **counts: int) -> None:
        with self._lock:
            for name, n in counts.items():
                setattr(self._stats, name, getattr(self._stats, name) + n)

    def _cut_all(self, rst: bool, count: bool = True) -> int:
        conns = list(self._conns)
        for conn in conns:
            conn.close(rst=rst)
            conn.task.cancel()
        self._bump(cut=len(conns) if count else 0)
        return len(conns)

    async def _pause(self, seconds: float) -> bool:
        """Sleep; False if the proxy is stopping."""
        assert self._stopping is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return not self._stopping.is_set()

    async def _run_faults(
        self, plan: list[_Fault], done: list[tuple[str, float]], drop_if: Callable[[str], bool]
    ) -> None:
        """Apply ``plan``, logging to ``done``; stop early with the proxy."""
        for gap, kind, dur, delay in plan:
            if not await self._pause(gap):
                return
            if kind == "cut":
                self._cut_all(rst=True)
            else:
                self._apply_mode(_Mode(kind, delay_s=delay, drop_if=drop_if))
            done.append((kind, dur))
            ok = await self._pause(dur)
            self._apply_mode(_Mode())
            if not ok:
                return

    async def _on_client(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        conn = _Conn(cr, cw)
        self._conns.add(conn)
        mode, rst = self._mode, True
        self._bump(accepted=1, refused=mode.name == "refuse", blackholed=mode.name == "blackhole")
        try:
            if mode.name == "refuse":
                return
            if mode.name == "blackhole":  # swallow until the client gives up
                while await cr.read(_CHUNK):
                    pass
                return
            if mode.name in _ANSWER_MODES:  # answer once the request starts
                if await asyncio.wait_for(cr.read(_CHUNK), 10):
                    rst = not await self._answer(conn, mode)
                return
            try:
                conn.ur, conn.uw = await asyncio.wait_for(
                    asyncio.open_connection(*self.upstream), 5
                )
            except (OSError, TimeoutError):
                return self._bump(upstream_failed=1)
            rst = not await self._pipe(conn)
        except (OSError, TimeoutError, asyncio.CancelledError):  # 3.11 logs a cancelled callback
            pass
        finally:
            conn.close(rst=rst)
            self._conns.discard(conn)

    async def _answer(self, conn: _Conn, mode: _Mode) -> bool:
        """Send the canned response, half-close, read the client out; True if it went cleanly."""
        if mode.name == "html":
            status, ctype, body = 200, "text/html; charset=utf-8", _HTML
        else:
            status, ctype = mode.status, "application/json"
            body = mode.body or json.dumps({"error": "injected", "status": status}).encode()
        head = (
            f"HTTP/1.1 {status} {'OK' if status == 200 else 'Injected'}\r\n"
            f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        conn.cw.write(head.encode() + body)
        await conn.cw.drain()
        self._bump(answered=1)
        conn.cw.write_eof()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                while await conn.cr.read(_CHUNK):
                    pass
                return True
        return False

    async def _pipe(self, conn: _Conn) -> bool:
        """Forward both ways until both sides sent EOF; True if it ended cleanly."""
        assert conn.uw is not None
        up = asyncio.create_task(self._pump(conn, upstream=True))
        down = asyncio.create_task(self._pump(conn, upstream=False))
        try:
            await asyncio.gather(up, down)
            return True
        except _Takeover as takeover:
            down.cancel()
            await asyncio.wait({down})
            conn.uw.transport.abort()
            return await self._answer(conn, takeover.args[0])
        except OSError:
            return False
        finally:
            for t in (up, down):
                t.cancel()
            await asyncio.gather(up, down, return_exceptions=True)

    def _drop_answer(self, conn: _Conn, request_line: str) -> None:
        """Throw this answer away (and the rest of the connection's bytes) and reset both sides."""
        conn.blackholed = True
        conn.close(rst=True)
        with self._lock:
            self._stats.dropped[request_line] += 1

    def _cut_point(self, conn: _Conn, data: bytes) -> int | None:
        """How much of ``data`` to forward before an armed ``cut_after`` cut (None: all)."""
        marker = self._cut_marker
        if marker is None:
            return None
        seen = conn.down_seen + data
        at = seen.find(marker)
        if at < 0:
            conn.down_seen = seen[-len(marker) :]  # a marker split across reads
            return None
        end = _EVENT_END.search(seen, at + len(marker) - 1)
        if end is None:
            conn.down_seen = seen  # the event's end is still to come
            return None
        self._cut_marker, conn.down_seen = None, b""
        return end.end() - (len(seen) - len(data))

    async def _pump(self, conn: _Conn, upstream: bool) -> None:
        """Forward one direction: read, queue each chunk with its due time, write in order."""
        reader, writer = (conn.cr, conn.uw) if upstream else (conn.ur, conn.cw)
        assert reader is not None and writer is not None
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(maxsize=64)
        loop = asyncio.get_running_loop()

        async def send() -> None:  # an empty chunk is EOF: half-close the other side
            while True:
                due, data = await queue.get()
                if due > loop.time():
                    await asyncio.sleep(due - loop.time())
                if data is _CUT:  # after the flush of what came before: close, FIN
                    for _ in range(1000):
                        if not writer.transport.get_write_buffer_size():
                            break
                        await asyncio.sleep(0.005)
                    conn.blackholed = True
                    conn.close()
                    self._bump(cut=1)
                    continue
                if not data:  # a dead path does not deliver FIN
                    if not (conn.blackholed or conn.failed) and writer.can_write_eof():
                        writer.write_eof()
                    return
                if conn.blackholed or conn.failed:
                    continue
                try:
                    writer.write(data)
                    await writer.drain()
                except OSError:  # the peer is gone: close both sides, the readers see EOF
                    conn.failed = True
                    conn.close(rst=True)
                    continue
                self._bump(**{"bytes_up" if upstream else "bytes_down": len(data)})

        sender = asyncio.create_task(send())
        try:
            while True:
                data = await reader.read(_CHUNK)
                mode = self._mode
                if conn.blackholed:
                    if data:
                        continue
                    if upstream:  # the client left: end the whole connection
                        raise ConnectionAbortedError("client closed a blackholed connection")
                    return  # a dead path does not deliver the upstream's FIN
                if data and upstream:
                    if mode.name in _ANSWER_MODES and conn.parser.at_start:
                        raise _Takeover(mode)
                    if lines := conn.parser.feed(data):
                        conn.awaiting = lines[-1]  # HTTP/1.1 answers in order; no pipelining
                        with self._lock:
                            self._stats.requests.update(lines)
                elif data and conn.awaiting is not None:  # the first bytes of an answer
                    line, conn.awaiting = conn.awaiting, None
                    if mode.name == "drop_answers" and mode.drop_if(line):
                        self._drop_answer(conn, line)
                        continue
                due = loop.time() + (mode.delay_s if mode.name == "delay" else 0.0)
                keep = self._cut_point(conn, data) if data and not upstream else None
                if keep is not None:
                    await queue.put((due, data[:keep]))
                    await queue.put((due, _CUT))
                    continue
                await queue.put((due, data))
                if not data:
                    await sender
                    return
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
