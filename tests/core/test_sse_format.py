"""core.sse against the WHATWG event-stream rules, case by case after the web-platform-tests
``eventsource/format-*`` files; every case is also fed one byte at a time."""

import asyncio

import httpx
import pytest

from core.sse import ServerSentEvent, SSEDecoder, SSEResponseError, parse, stream_events


def ev(data: str, event: str = "message", id: str = "", retry: int | None = None):
    return ServerSentEvent(event=event, data=data, id=id, retry=retry)


CASES = {
    # format-bom / format-bom-2: one leading BOM is stripped, a second is part of a field name
    "bom": ("\ufeffdata: 1\n\n\ufeffdata: 2\n\ndata: 3\n\n", [ev("1"), ev("3")]),
    "bom-2": ("\ufeff\ufeffdata: 1\n\ndata: 2\n\ndata: 3\n\n", [ev("2"), ev("3")]),
    # format-comments
    "comments": (
        "data:1\r:\0\n:\r\ndata:2\n:"
        + "x" * 300
        + "\rdata:3\n:data:fail\r:"
        + "y" * 300
        + "\ndata:4\n\n",
        [ev("1\n2\n3\n4")],
    ),
    # format-field-data: a bare "data" line appends an empty line
    "field-data": ("data:\n\ndata\ndata\n\ndata:test\n\n", [ev(""), ev("\n"), ev("test")]),
    "field-event": ("event:test\ndata:x\n\ndata:x\n\n", [ev("x", "test"), ev("x")]),
    "field-event-empty": ("event: \ndata:data\n\n", [ev("data")]),
    "field-id": ("id: 1\ndata: x\n\nid\ndata: y\n\n", [ev("x", id="1"), ev("y", id="")]),
    # an id-only block dispatches nothing but sets the id for later events
    "field-id-2": ("id: 1\n\ndata: x\n\n", [ev("x", id="1")]),
    "field-id-null": ("id: 1\ndata: a\n\nid: 2\0\ndata: b\n\n", [ev("a", id="1"), ev("b", id="1")]),
    "field-parsing": (
        "data:\0\ndata:  2\rData:1\ndata\0:2\ndata:1\r\0data:4\nda-ta:3\rdata_5\ndata:3\r"
        "data:\r\n data:32\ndata:4\n\n",
        [ev("\0\n 2\n1\n3\n\n4")],
    ),
    "field-retry": ("retry:03000\ndata:x\n\n", [ev("x", retry=3000)]),
    "field-retry-bogus": (
        "retry: 1000.5\ndata:a\n\nretry: -1\ndata:b\n\nretry:\ndata:c\n\nretry: 1e3\ndata:d\n\n",
        [ev("a"), ev("b"), ev("c"), ev("d")],
    ),
    "field-retry-empty-block": ("retry: 500\n\ndata: x\n\n", [ev("x")]),
    "field-unknown": (
        "data:test\n data\ndata\nfoobar:xxx\njustsometext\n:thisisacommentyay\ndata:test\n\n",
        [ev("test\n\ntest")],
    ),
    "leading-space": ("data:\ttest\rdata: \ndata:test\n\n", [ev("\ttest\n\ntest")]),
    "newlines": ("data:test\r\ndata\ndata:test\r\n\r", [ev("test\n\ntest")]),
    "null-character": ("data:\0\n\n", [ev("\0")]),
    "utf-8": ("data:ok\u2026\n\n", [ev("ok\u2026")]),
    # an event not terminated before EOF is discarded
    "eof-unterminated-line": ("data: a\n\ndata: b", [ev("a")]),
    "eof-unterminated-event": ("data: a\n\ndata: b\n", [ev("a")]),
    # comments never surface as events, also after an id was seen (the httpx-sse 0.4.3 bug)
    "comment-after-id": (
        "id: 7:1\nevent: change\ndata: {}\n\n: hb 1\n\n: hb 1\n\n",
        [ev("{}", "change", "7:1")],
    ),
    "crlf-blocks": (
        "event: a\r\ndata: 1\r\n\r\nevent: b\r\ndata: 2\r\n\r\n",
        [ev("1", "a"), ev("2", "b")],
    ),
    "cr-only": ("data: 1\r\rdata: 2\r\r", [ev("1"), ev("2")]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_format_case(name: str) -> None:
    text, expected = CASES[name]
    raw = text.encode("utf-8")
    assert parse([raw]) == expected
    assert parse([raw[i : i + 1] for i in range(len(raw))]) == expected


def test_last_event_id_state_and_retry_state() -> None:
    d = SSEDecoder()
    assert d.feed(b"retry: 250\nid: 3\n\n") == []
    assert (d.last_event_id, d.retry) == ("3", 250)
    assert d.feed(b"retry: x\ndata: a\n\n") == [ev("a", id="3")]
    assert d.retry == 250


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    assert parse([b"data: \xff\xfe\n\n"]) == [ev("\ufffd\ufffd")]


def _client(handler) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def test_stream_events_checks_status_and_content_type() -> None:
    async def run(status: int, ctype: str) -> SSEResponseError:
        async with _client(
            lambda r: httpx.Response(
                status, headers={"content-type": ctype}, content=b"<html>nope</html>"
            )
        ) as c:
            with pytest.raises(SSEResponseError) as info:
                async for _ in stream_events(c, "http://t/events"):
                    pass
            return info.value

    err = asyncio.run(run(200, "text/html"))
    assert err.status == 200 and err.content_type == "text/html" and b"nope" in err.body
    assert asyncio.run(run(401, "application/json")).status == 401


def test_stream_events_sends_last_event_id_and_parses() -> None:
    seen: dict[str, str] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.update(request.headers)
        body = b"\xef\xbb\xbfretry: 100\nevent: hello\ndata: {}\n\n: hb 1\n\nid: 5:1\ndata: x\n\n"
        return httpx.Response(
            200, headers={"content-type": "text/event-stream; charset=utf-8"}, content=body
        )

    async def run() -> list[ServerSentEvent]:
        async with _client(handler) as c:
            return [e async for e in stream_events(c, "http://t/e", last_event_id="5:0")]

    events = asyncio.run(run())
    assert events == [ev("{}", "hello", retry=100), ev("x", id="5:1")]
    assert seen["last-event-id"] == "5:0"
    assert seen["accept"] == "text/event-stream"
