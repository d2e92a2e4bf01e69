"""``BroadcastChannel``, ``MessageEvent`` and the batched in-process delivery queue."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from time import monotonic_ns
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

from ._errors import InvalidStateError
from ._frames import decode_json, encode_json

if TYPE_CHECKING:
    from ._bus import LocalBus

log = logging.getLogger(__name__)

MAX_BATCH = 2000  # messages delivered per loop callback; the rest waits for the next one
EVENT_TYPES = ("message", "messageerror")
NO_COPY: Any = object()  # marks "no pre-decoded copy" in a queued item
IMMUTABLE = frozenset({str, int, float, bool, type(None)})


class MessageEvent(msgspec.Struct, eq=False):
    """One delivered message. ``data`` is this receiver's own decoded copy.

    ``seq`` is the hub's sequence number (``None`` for a follower's own message delivered inside
    the posting process before the hub sequenced it, and in degraded in-process mode);
    ``sender`` is the posting bus's member id; ``target`` the receiving channel; ``type`` is
    ``"message"``. ``messageerror`` events (:class:`MessageErrorEvent`) have ``data`` None and
    ``error`` saying what was wrong. (A ``msgspec.Struct``: cheap to create, one per receiver.)
    """

    _data: Any
    seq: int | None
    sender: str | None
    target: Any  # BroadcastChannel
    _raw: Any = None  # validated JSON, decoded into this receiver's own copy on first access
    error: str | None = None
    type: ClassVar[str] = "message"

    @property
    def data(self) -> Any:
        raw = self._raw
        if raw is not None:
            self._raw = None
            self._data = decode_json(raw)
        return self._data

    def __repr__(self) -> str:
        return f"<{type(self).__name__} seq={self.seq} sender={self.sender}>"


class MessageErrorEvent(MessageEvent):
    """A frame for this channel that could not be decoded or validated."""

    type: ClassVar[str] = "messageerror"


Listener = Callable[[MessageEvent], object]


class BroadcastChannel:
    """WHATWG ``BroadcastChannel`` on a :class:`LocalBus` (same name + same scope = same channel).

    ``post_message`` reaches every *other* channel object of this name open at post time, in this
    process and in the scope's other processes, asynchronously and in post order per sender.
    """

    __slots__ = (
        "__weakref__",
        "_born",
        "_bus",
        "_closed",
        "_err",
        "_handlers",
        "_msg",
        "_name",
        "_name_json",
    )

    def __init__(self, name: str, *, bus: LocalBus) -> None:
        self._name = str(name)
        self._name_json = encode_json(self._name)
        self._bus = bus
        self._closed = False
        self._msg: tuple[Listener, ...] = ()
        self._err: tuple[Listener, ...] = ()
        self._handlers: dict[str, Listener | None] = {}
        self._born = monotonic_ns()
        bus.attach(self, self._name)

    @property
    def name(self) -> str:
        return self._name

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def bus(self) -> LocalBus:
        return self._bus

    def post_message(self, data: Any) -> None:
        """Send ``data`` (a JSON value) to the other channels of this name.

        Raises InvalidStateError once closed (checked first), DataCloneError if ``data`` is not
        a plain JSON value or its encoding exceeds the frame limit.
        """
        if self._closed:
            raise InvalidStateError(f"BroadcastChannel {self._name!r} is closed")
        self._bus.post(self, self._name, self._name_json, data)

    def add_listener(self, type: str, callback: Listener) -> Callable[[], None]:
        """Call ``callback(event)`` for each ``"message"`` or ``"messageerror"``.

        Returns a callable that removes the listener. Adding the same callback twice is a no-op.
        """
        if type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {type!r}; expected one of {EVENT_TYPES}")
        if not callable(callback):
            raise TypeError("callback must be callable")
        attr = "_msg" if type == "message" else "_err"
        if callback not in getattr(self, attr):
            setattr(self, attr, (*getattr(self, attr), callback))

        def remove() -> None:
            self.remove_listener(type, callback)

        return remove

    def remove_listener(self, type: str, callback: Listener) -> None:
        attr = "_msg" if type == "message" else "_err"
        setattr(self, attr, tuple(cb for cb in getattr(self, attr) if cb is not callback))

    def _set_handler(self, type: str, callback: Listener | None) -> None:
        # Like a DOM event handler attribute: replacing keeps its place among the listeners,
        # None removes it, setting it again later appends it.
        attr = "_msg" if type == "message" else "_err"
        old = self._handlers.get(type)
        current = getattr(self, attr)
        if old is not None and callback is not None:
            setattr(self, attr, tuple(callback if cb is old else cb for cb in current))
        elif old is not None:
            setattr(self, attr, tuple(cb for cb in current if cb is not old))
        elif callback is not None:
            setattr(self, attr, (*current, callback))
        self._handlers[type] = callback

    @property
    def on_message(self) -> Listener | None:
        return self._handlers.get("message")

    @on_message.setter
    def on_message(self, callback: Listener | None) -> None:
        self._set_handler("message", callback)

    @property
    def on_messageerror(self) -> Listener | None:
        return self._handlers.get("messageerror")

    @on_messageerror.setter
    def on_messageerror(self, callback: Listener | None) -> None:
        self._set_handler("messageerror", callback)

    def close(self) -> None:
        """Stop receiving (queued messages are dropped) and sending. Idempotent."""
        if not self._closed:
            self._closed = True
            self._bus.detach(self, self._name)

    def __enter__(self) -> BroadcastChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<BroadcastChannel {self._name!r} {state}>"


def _call(callbacks: tuple[Listener, ...], event: MessageEvent) -> None:
    for cb in callbacks:
        try:
            cb(event)
        except Exception:
            log.exception("BroadcastChannel %r: %s listener raised", event.target.name, event.type)


# (receivers, poster, raw, decoded copy, seq, sender, error, post time); receivers None: a
# queued callback (the poster), see Dispatcher.call()
Item = tuple[
    "tuple[BroadcastChannel, ...] | None",
    Any,
    Any,
    Any,
    "int | None",
    "str | None",
    "str | None",
    int,
]


class Dispatcher:
    """In-process delivery: one loop callback drains a whole batch of posted messages.

    Messages from other processes are delivered right in the socket's read callback (itself one
    callback per batch of frames) when nothing is queued, else queued behind what is.
    """

    __slots__ = ("_loop", "_q", "_scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._q: deque[Item] = deque()
        self._scheduled = False

    def push(self, item: Item) -> None:
        self._q.append(item)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._drain)

    def deliver_or_push(self, item: Item) -> None:
        """For items that did not originate in a ``post_message`` call of this process."""
        if self._q:
            self.push(item)
        else:
            _deliver(item)

    def call(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` after every delivery queued so far (keeps state answers in order)."""
        self.push((None, fn, None, NO_COPY, None, None, None, 0))

    def clear(self) -> None:
        self._q.clear()

    def _drain(self) -> None:
        self._scheduled = False
        q = self._q
        popleft = q.popleft
        for _ in range(min(len(q), MAX_BATCH)):
            _deliver(popleft())
        if q and not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._drain)


def _deliver(item: Item) -> None:
    receivers, poster, raw, first, seq, sender, error, t = item
    if receivers is None:  # a queued callback (see Dispatcher.call())
        try:
            poster()
        except Exception:
            log.exception("bus: queued callback raised")
        return
    if error is not None:
        for ch in receivers:
            if ch._err and not ch._closed and ch._born <= t:
                _call(ch._err, MessageErrorEvent(None, seq, sender, ch, None, error))
        return
    event_type = MessageEvent
    for ch in receivers:
        if ch is poster or ch._closed or ch._born > t:
            continue
        listeners = ch._msg
        if not listeners:
            continue
        if first is not NO_COPY:  # the copy made while encoding/validating
            event = event_type(first, seq, sender, ch)
            if type(first) not in IMMUTABLE:  # a str or number can be shared
                first = NO_COPY
        else:
            event = event_type(None, seq, sender, ch, raw)
        for cb in listeners:
            try:
                cb(event)
            except Exception:
                log.exception("BroadcastChannel %r: message listener raised", ch._name)
