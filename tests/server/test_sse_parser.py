"""The suite's strict SSE parser, checked against the event-stream format before it checks the
server."""

from __future__ import annotations

import pytest

from tests.support.sse import Comment, Event, SSEParser, SSEProtocolError


def parse(*chunks: bytes) -> list[tuple[str, ...]]:
    parser = SSEParser()
    items = [item for chunk in chunks for item in parser.feed(chunk)] + parser.finish()
    out: list[tuple[str, ...]] = []
    for item in items:
        if isinstance(item, Event):
            out.append((item.type, item.data, str(item.id), str(item.retry)))
        else:
            assert isinstance(item, Comment)
            out.append(("comment", item.text))
    return out


def test_events_comments_and_fields() -> None:
    stream = (
        b"retry: 2000\nevent: hello\ndata: {}\n\n"
        b": hb 5\n\n"
        b"id: 1:2\nevent: change\ndata: a\ndata: b\n\n"
    )
    expected = [
        ("hello", "{}", "None", "2000"),
        ("comment", "hb 5"),
        ("change", "a\nb", "1:2", "None"),
    ]
    assert parse(stream) == expected
    # Any split into chunks, and any line ending, gives the same events.
    for size in (1, 2, 3, 7):
        assert parse(*(stream[i : i + size] for i in range(0, len(stream), size))) == expected
    for eol in (b"\r\n", b"\r"):
        crlf = stream.replace(b"\n", eol)
        assert parse(*(crlf[i : i + 1] for i in range(len(crlf)))) == expected
    assert parse(b"\xef\xbb\xbf" + stream) == expected  # a leading BOM is dropped
    assert parse(b"event:x\ndata:no space\n\n") == [("x", "no space", "None", "None")]


@pytest.mark.parametrize(
    "bad",
    [
        b"bogus: 1\n\n",  # unknown field
        b"event: x\nretry: soon\ndata: 1\n\n",  # non-numeric retry
        b"event: x\n\n",  # no data
        b"data: 1\n\n",  # no type: all our events have one
        b"event: x\ndata: \xff\n\n",  # not UTF-8
    ],
)
def test_rejects_what_our_server_never_sends(bad: bytes) -> None:
    with pytest.raises(SSEProtocolError):
        parse(bad)


@pytest.mark.parametrize("cut", [b"event: x\ndata: 1\n", b"event: x\ndata: 1", b": partial"])
def test_rejects_a_stream_that_ends_mid_event(cut: bytes) -> None:
    with pytest.raises(SSEProtocolError):
        parse(cut)
