"""Server-Sent Events parsing exactly as the WHATWG HTML "event stream interpretation" rules say.

httpx-sse 0.4.3 gets several rules wrong (it keeps a leading BOM, dispatches id-only blocks,
accepts a negative ``retry``, and once an ``id`` was seen turns later comments into empty
events), so Concord parses the byte stream itself:

* one leading U+FEFF is stripped; lines end at CRLF, LF or CR (also split across chunks);
* ``:`` starts a comment, which never becomes an event;
* ``field: value`` drops one space after the colon; a line without colon is a field, value "";
* ``data`` lines are joined with ``\\n``; ``event`` sets the type (default ``message``);
* ``id`` sets the last event id unless the value contains NUL; an empty ``id`` resets it;
* ``retry`` counts only when it is all ASCII digits;
* a blank line dispatches; a block with no data dispatches nothing but still commits its id;
* an event not terminated before EOF is discarded.
"""

from __future__ import annotations

import codecs
import contextlib
from collections.abc import AsyncGenerator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    event: str
    data: str
    id: str
    retry: int | None = None


class SSEDecoder:
    """Incremental decoder: feed bytes with :meth:`feed`, get events; call :meth:`close` at EOF.

    ``last_event_id`` and ``retry`` hold the stream's state (the reconnection time is the last
    valid ``retry`` value seen, in ms, or None).
    """

    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buf = ""
        self._started = False
        self._skip_lf = False
        self._data: list[str] = []
        self._event = ""
        self._id_buffer = ""
        self.last_event_id = ""
        self.retry: int | None = None
        self._retry_in_block: int | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        text = self._utf8.decode(chunk)
        if not self._started and text:
            self._started = True
            if text.startswith("\ufeff"):
                text = text[1:]
        return list(self._lines(text))

    def close(self) -> list[ServerSentEvent]:
        """End of stream: an unterminated line and an undispatched event are discarded."""
        self._utf8.decode(b"", final=True)
        self._buf, self._data, self._event, self._retry_in_block = "", [], "", None
        return []

    def _lines(self, text: str) -> Iterator[ServerSentEvent]:
        buf = self._buf + text
        start = 0
        n = len(buf)
        while start < n:
            if self._skip_lf:
                self._skip_lf = False
                if buf[start] == "\n":
                    start += 1
                    continue
            cr = buf.find("\r", start)
            lf = buf.find("\n", start)
            ends = [i for i in (cr, lf) if i != -1]
            if not ends:
                break
            end = min(ends)
            line = buf[start:end]
            if buf[end] == "\r":
                self._skip_lf = True
            start = end + 1
            event = self._line(line)
            if event is not None:
                yield event
        self._buf = buf[start:]

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line[0] == ":":
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._id_buffer = value
        elif name == "retry":
            if value and value.isascii() and value.isdigit():
                self.retry = self._retry_in_block = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        self.last_event_id = self._id_buffer
        retry, self._retry_in_block = self._retry_in_block, None
        if not self._data:
            self._event = ""
            return None
        event = ServerSentEvent(
            event=self._event or "message",
            data="\n".join(self._data),
            id=self.last_event_id,
            retry=retry,
        )
        self._data, self._event = [], ""
        return event


def parse(chunks: Iterable[bytes]) -> list[ServerSentEvent]:
    """All events of a complete byte stream (for tests and replay)."""
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    decoder.close()
    return events


class SSEResponseError(Exception):
    """The response cannot be read as an event stream (status or content type)."""

    def __init__(self, status: int, content_type: str, body: bytes = b"") -> None:
        super().__init__(f"HTTP {status} ({content_type or 'no content type'})")
        self.status = status
        self.content_type = content_type
        self.body = body


class _StreamingClient(Protocol):
    # stream(method, url, headers=..., **request_options) -> an async context manager giving a
    # response; typed loosely so that httpx.AsyncClient's keyword-only signature matches.
    def stream(self, *args: Any, **kwargs: Any) -> Any: ...


async def stream_events(
    http_client: _StreamingClient,
    url: str,
    *,
    last_event_id: str | None = None,
    headers: dict[str, str] | None = None,
    **request_options: Any,
) -> AsyncGenerator[ServerSentEvent, None]:
    """GET ``url`` as an event stream with an httpx-compatible client and yield its events.

    The status (200) and content type (``text/event-stream``) are checked before any byte is
    parsed; otherwise :class:`SSEResponseError` carries them (and up to 4 KiB of the body).
    ``request_options`` (e.g. ``timeout``) go to ``http_client.stream``.
    """
    req_headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache", **(headers or {})}
    if last_event_id:
        req_headers["Last-Event-ID"] = last_event_id
    async with http_client.stream("GET", url, headers=req_headers, **request_options) as response:
        content_type = response.headers.get("content-type", "")
        media = content_type.split(";", 1)[0].strip().lower()
        if response.status_code != 200 or media != "text/event-stream":
            body = b""
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) >= 4096:
                    break
            raise SSEResponseError(response.status_code, content_type, body[:4096])
        decoder = SSEDecoder()
        chunks = response.aiter_bytes()
        async with contextlib.aclosing(chunks):  # closed in this task, even when cancelled
            async for chunk in chunks:
                for event in decoder.feed(chunk):
                    yield event
        decoder.close()
