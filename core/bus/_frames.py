"""Wire frames: a 4-byte big-endian length, then one JSON object with a version field ``v``.

Every frame carries the fencing epoch ``e`` of the hub it is addressed to or comes from. Message
frames are built by hand (bytes formatting) so that the hub can forward the sender's bytes
unchanged: it only splices ``{"s":<seq>,"src":"<member>",`` in front of the sender's JSON object.
Control frames are small ``msgspec.Struct`` s. Decoding is strict (unknown fields are errors), and
a message's data stays a ``msgspec.Raw`` until each receiver decodes its own copy. Never pickle.

Fields have descriptive Python names (``epoch``, ``version``, ``seq``, ``channel``, ...) and short
wire names (``e``, ``v``, ``s``, ``c``, ...): :data:`WIRE_NAMES` maps one to the other.
"""

from __future__ import annotations

import re
import struct
from typing import Any

import msgspec
from msgspec import Raw, Struct

from ._errors import DataCloneError as DataCloneError  # re-exported: F.DataCloneError

VERSION = 1
MAX_FRAME = 1 << 20  # bytes of JSON per frame, hard limit both ways
MAX_DATA = MAX_FRAME - 4096  # data + channel name; the rest is room for the envelope
MAX_POST = MAX_FRAME - 1024  # a follower's message frame: the hub's stamp must still fit
_LEN = struct.Struct(">I")
pack_len = _LEN.pack
MEMBER_ID = re.compile(r"[0-9A-Za-z_.-]{1,64}")

_encoder = msgspec.json.Encoder()
encode_json = _encoder.encode
decode_json = msgspec.json.Decoder().decode


class FrameError(ValueError):
    """The byte stream cannot be split into frames; the connection must be dropped."""


class FrameReader:
    """Incremental splitter of a byte stream into frame payloads."""

    __slots__ = ("_buf", "_max")

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._buf = bytearray()
        self._max = max_frame

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the complete payloads. Raises FrameError on a bad length."""
        buf = self._buf
        buf += data
        out: list[bytes] = []
        off = 0
        n = len(buf)
        while n - off >= 4:
            (size,) = _LEN.unpack_from(buf, off)
            if size == 0 or size > self._max:
                raise FrameError(f"bad frame length {size}")
            end = off + 4 + size
            if end > n:
                break
            out.append(bytes(buf[off + 4 : end]))
            off = end
        if off:
            del buf[:off]
        return out


def encode_data(data: Any) -> tuple[bytes, Any]:
    """Encode a JSON value once; return ``(raw, decoded_copy)`` or raise DataCloneError.

    Accepted: dict with str keys, list, str, int, finite float, bool, None — exactly the values
    whose JSON round trip is equal to the original. Tuples, sets, bytes, NaN/inf, non-str keys,
    dataclasses etc. are rejected (they would arrive changed).
    """
    try:
        raw = _encoder.encode(data)
        copy = decode_json(raw)
        same = copy == data
    except Exception as exc:  # TypeError, ValueError, OverflowError, RecursionError, ...
        raise DataCloneError(f"data is not JSON-serializable: {exc}") from None
    if not same:
        raise DataCloneError("data is not a plain JSON value (tuple, set, NaN, non-str key, ...?)")
    if len(raw) > MAX_DATA:
        raise DataCloneError(f"data too large: {len(raw)} bytes encoded (max {MAX_DATA})")
    return raw, copy


def post_body(name_json: bytes, mid: int, t: int, raw: bytes) -> bytes:
    """The part of a message frame after the epoch: ``"v":1,"k":"m","c":..,"id":..,"t":..,"d":..}``.

    ``t`` is the post time (``time.monotonic_ns()``, one clock for all processes of a host):
    a channel created later than that does not receive the message, whichever process it is in.
    """
    return b'"v":1,"k":"m","c":%b,"id":%d,"t":%d,"d":%b}' % (name_json, mid, t, raw)


def frame(obj: Struct) -> bytes:
    """Encode a control frame with its length prefix."""
    body = _encoder.encode(obj)
    if len(body) > MAX_FRAME:
        raise DataCloneError(f"frame too large: {len(body)} bytes")
    return pack_len(len(body)) + body


# --- follower -> hub -------------------------------------------------------------------------

# Python name -> wire name. The short wire names keep frames small; renaming a field in Python
# never changes a byte on the wire (tests/core/bus/test_frames_wire.py pins the encodings).
WIRE_NAMES = {
    "epoch": "e",
    "version": "v",
    "seq": "s",
    "channel": "c",
    "data": "d",
    "time": "t",
    "message_id": "id",
    "leader": "l",
    "members": "ms",
    "member": "m",
    "providers": "p",
    "last_epoch": "le",
    "last_seq": "ls",
    "base_seq": "b",
    "base_epoch": "be",
    "replay_from": "r",
    "name": "n",
    "request_id": "rid",
}


class _ToHub(Struct, tag_field="k", forbid_unknown_fields=True, kw_only=True, rename=WIRE_NAMES):
    epoch: int
    version: int


class Hello(_ToHub, tag="hello"):
    """First frame on a connection. ``last_epoch``/``last_seq``: the member's position."""

    member: str
    pid: int
    last_epoch: int
    last_seq: int
    providers: list[str] = []


class Post(_ToHub, tag="m"):
    """A message (decoded only for validation: the hub forwards the sender's bytes)."""

    channel: str
    message_id: int
    time: int  # time.monotonic_ns() at post
    data: Raw


class Provide(_ToHub, tag="prov"):
    providers: list[str]


class StateRequest(_ToHub, tag="sreq"):
    to: str
    name: str
    request_id: int


class StateReply(_ToHub, tag="srep"):
    to: str
    request_id: int
    ok: bool
    at: int = 0  # the seq the snapshot reflects
    data: Raw = Raw(b"null")


class Yield(_ToHub, tag="yield"):
    """Ask the leader to hand leadership over to the sender."""


ToHub = Hello | Post | Provide | StateRequest | StateReply | Yield
ControlToHub = Provide | StateRequest | StateReply | Yield
decode_to_hub = msgspec.json.Decoder(ToHub).decode


# --- hub -> follower -------------------------------------------------------------------------


class _FromHub(Struct, tag_field="k", forbid_unknown_fields=True, kw_only=True, rename=WIRE_NAMES):
    epoch: int
    version: int


class Member(Struct, forbid_unknown_fields=True, rename=WIRE_NAMES):
    member: str
    pid: int
    providers: list[str] = []


class Welcome(_FromHub, tag="welcome"):
    """``seq``: last seq issued; ``base_seq``/``base_epoch``: where the epoch started;
    ``replay_from``: first seq about to be replayed (``seq + 1`` when nothing is)."""

    leader: str
    seq: int
    base_seq: int
    base_epoch: int
    replay_from: int
    members: list[Member]


class Msg(_FromHub, tag="m"):
    seq: int
    src: str
    channel: str
    message_id: int
    time: int
    data: Raw


class Ack(_FromHub, tag="ack"):
    """The sender's messages up to ``message_id`` are in every member's socket; ``seq`` is that
    one's seq (the hub never sends a member its own messages, so this is how it learns them)."""

    message_id: int
    seq: int


class Members(_FromHub, tag="mem"):
    leader: str
    members: list[Member]


class RoutedRequest(_FromHub, tag="sreq"):
    src: str
    to: str
    name: str
    request_id: int


class RoutedReply(_FromHub, tag="srep"):
    src: str
    to: str
    request_id: int
    ok: bool
    at: int = 0
    data: Raw = Raw(b"null")


class Handover(_FromHub, tag="handover"):
    to: str


FromHub = Welcome | Msg | Ack | Members | RoutedRequest | RoutedReply | Handover
decode_from_hub = msgspec.json.Decoder(FromHub).decode


def salvage_channel(payload: bytes) -> str | None:
    """Best effort: the channel name of a frame that failed validation (for ``messageerror``)."""
    try:
        obj = decode_json(payload)
    except Exception:
        return None
    if isinstance(obj, dict) and obj.get("k") == "m":
        name = obj.get("c")
        if isinstance(name, str):
            return name
    return None
