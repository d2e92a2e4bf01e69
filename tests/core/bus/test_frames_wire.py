"""The frames' descriptive Python names never change the wire: every kind encodes to the same
short-key bytes as before the rename, and those bytes decode back to the same frame."""

from __future__ import annotations

import msgspec
import pytest
from msgspec import Raw

from core.bus import _frames as F

TO_HUB: list[tuple[msgspec.Struct, bytes]] = [
    (
        F.Hello(
            epoch=3, version=1, member="m-1", pid=42, last_epoch=2, last_seq=17, providers=["p"]
        ),
        b'{"k":"hello","m":"m-1","pid":42,"le":2,"ls":17,"p":["p"],"e":3,"v":1}',
    ),
    (
        F.Post(epoch=3, version=1, channel="ch", message_id=7, time=123, data=Raw(b'{"a":1}')),
        b'{"k":"m","c":"ch","id":7,"t":123,"d":{"a":1},"e":3,"v":1}',
    ),
    (
        F.Provide(epoch=3, version=1, providers=["a", "b"]),
        b'{"k":"prov","p":["a","b"],"e":3,"v":1}',
    ),
    (
        F.StateRequest(epoch=3, version=1, to="m-2", name="prefs", request_id=5),
        b'{"k":"sreq","to":"m-2","n":"prefs","rid":5,"e":3,"v":1}',
    ),
    (
        F.StateReply(epoch=3, version=1, to="m-2", request_id=5, ok=True, at=9, data=Raw(b"[1]")),
        b'{"k":"srep","to":"m-2","rid":5,"ok":true,"at":9,"d":[1],"e":3,"v":1}',
    ),
    (F.Yield(epoch=0, version=1), b'{"k":"yield","e":0,"v":1}'),
]

FROM_HUB: list[tuple[msgspec.Struct, bytes]] = [
    (
        F.Welcome(
            epoch=3,
            version=1,
            leader="m-0",
            seq=20,
            base_seq=10,
            base_epoch=2,
            replay_from=15,
            members=[
                F.Member(member="m-0", pid=1, providers=["x"]),
                F.Member(member="m-1", pid=2),
            ],
        ),
        b'{"k":"welcome","l":"m-0","s":20,"b":10,"be":2,"r":15,'
        b'"ms":[{"m":"m-0","pid":1,"p":["x"]},{"m":"m-1","pid":2,"p":[]}],"e":3,"v":1}',
    ),
    (
        F.Msg(
            epoch=3,
            version=1,
            seq=21,
            src="m-1",
            channel="ch",
            message_id=8,
            time=124,
            data=Raw(b"null"),
        ),
        b'{"k":"m","s":21,"src":"m-1","c":"ch","id":8,"t":124,"d":null,"e":3,"v":1}',
    ),
    (
        F.Ack(epoch=3, version=1, message_id=8, seq=21),
        b'{"k":"ack","id":8,"s":21,"e":3,"v":1}',
    ),
    (
        F.Members(epoch=3, version=1, leader="m-0", members=[F.Member(member="m-0", pid=1)]),
        b'{"k":"mem","l":"m-0","ms":[{"m":"m-0","pid":1,"p":[]}],"e":3,"v":1}',
    ),
    (
        F.RoutedRequest(epoch=3, version=1, src="m-1", to="m-2", name="prefs", request_id=5),
        b'{"k":"sreq","src":"m-1","to":"m-2","n":"prefs","rid":5,"e":3,"v":1}',
    ),
    (
        F.RoutedReply(epoch=3, version=1, src="m-2", to="m-1", request_id=5, ok=False),
        b'{"k":"srep","src":"m-2","to":"m-1","rid":5,"ok":false,"at":0,"d":null,"e":3,"v":1}',
    ),
    (F.Handover(epoch=3, version=1, to="m-2"), b'{"k":"handover","to":"m-2","e":3,"v":1}'),
]


def _raw_as_bytes(obj: msgspec.Struct) -> dict[str, object]:
    """Field values for comparison (``Raw`` compares by identity, so by its bytes here)."""
    return {
        name: bytes(v) if isinstance(v, Raw) else v
        for name in obj.__struct_fields__
        for v in [getattr(obj, name)]
    }


@pytest.mark.parametrize(("obj", "wire"), TO_HUB + FROM_HUB, ids=lambda x: type(x).__name__)
def test_encoding_keeps_the_short_wire_names(obj: msgspec.Struct, wire: bytes) -> None:
    assert F.encode_json(obj) == wire
    assert F.frame(obj) == F.pack_len(len(wire)) + wire


@pytest.mark.parametrize(("obj", "wire"), TO_HUB, ids=lambda x: type(x).__name__)
def test_short_wire_names_decode_to_hub(obj: msgspec.Struct, wire: bytes) -> None:
    got = F.decode_to_hub(wire)
    assert type(got) is type(obj) and _raw_as_bytes(got) == _raw_as_bytes(obj)


@pytest.mark.parametrize(("obj", "wire"), FROM_HUB, ids=lambda x: type(x).__name__)
def test_short_wire_names_decode_from_hub(obj: msgspec.Struct, wire: bytes) -> None:
    got = F.decode_from_hub(wire)
    assert type(got) is type(obj) and _raw_as_bytes(got) == _raw_as_bytes(obj)


def test_python_names_are_not_accepted_on_the_wire() -> None:
    with pytest.raises(msgspec.ValidationError):
        F.decode_from_hub(b'{"k":"ack","message_id":8,"seq":21,"epoch":3,"version":1}')


def test_hand_built_message_frames_match_the_structs() -> None:
    """The hot path builds message frames by hand: they decode with the renamed fields."""
    body = F.post_body(F.encode_json("ch"), 7, 123, b'{"a":1}')
    post = F.decode_to_hub(b'{"e":3,' + body)
    assert isinstance(post, F.Post)
    assert (post.epoch, post.version, post.channel, post.message_id, post.time) == (
        3,
        1,
        "ch",
        7,
        123,
    )
    msg = F.decode_from_hub(b'{"s":9,"src":"m-1","e":3,' + body)
    assert isinstance(msg, F.Msg) and (msg.seq, msg.src, msg.epoch) == (9, "m-1", 3)
    assert bytes(msg.data) == b'{"a":1}'
