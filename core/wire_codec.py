"""JSON on the wire: strict encoding and decoding of the :mod:`core.protocol` types, shared by
the server and the client (docs/architecture.md §4.1). Re-exported by :mod:`core.protocol`."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from .wire_text import ProtocolError

__all__ = ["MalformedError", "decode", "decode_request", "encode"]


class MalformedError(ProtocolError):
    """The bytes are not JSON at all (as opposed to JSON of the wrong shape)."""


T = TypeVar("T")
_encoder = msgspec.json.Encoder()
_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


def encode(obj: Any) -> bytes:
    return _encoder.encode(obj)


def decode(data: bytes | str, type_: type[T]) -> T:
    """Strictly decode JSON ``data`` as ``type_``; raises :class:`ProtocolError`."""
    dec: msgspec.json.Decoder[T] | None = _decoders.get(type_)
    if dec is None:
        dec = _decoders[type_] = msgspec.json.Decoder(type_)
    try:
        return dec.decode(data)
    except msgspec.ValidationError as exc:
        raise ProtocolError(str(exc)) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # bad UTF-8 in a string
        raise MalformedError(f"malformed JSON: {exc}") from None


def decode_request(data: bytes, type_: type[T]) -> T:
    """:func:`decode` for what the server reads, except that an integer may also be written
    as a whole-number float (``97481.0``, ``1e3``): JSON Schema's ``integer`` admits it, so a
    client generated from the OpenAPI description may send one. ``1.5`` stays an error."""
    try:
        return decode(data, type_)
    except MalformedError:
        raise
    except ProtocolError as first:
        try:
            fixed, changed = _whole_floats_to_ints(msgspec.json.decode(data))
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            raise first from None
        if not changed:
            raise first from None
        try:
            return msgspec.convert(fixed, type_)
        except msgspec.ValidationError as exc:
            raise ProtocolError(str(exc)) from None


def _whole_floats_to_ints(value: Any) -> tuple[Any, bool]:
    """``value`` (untyped JSON) with every finite whole-number float made an int."""
    if isinstance(value, float):
        if value.is_integer():
            return int(value), True
        return value, False
    if isinstance(value, list):
        items = [_whole_floats_to_ints(v) for v in value]
        return [v for v, _ in items], any(c for _, c in items)
    if isinstance(value, dict):
        pairs = {k: _whole_floats_to_ints(v) for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, any(c for _, c in pairs.values())
    return value, False
