"""``BroadcastChannel``, ``MessageEvent`` and the batched in-process delivery queue."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from time import monotonic_ns
from typing import TYPE_CHECKING, Any

from ._errors import InvalidStateError
from ._frames import decode_json, encode_json

if TYPE_CHECKING:
    from ._bus import LocalBus

log = logging.getLogger("core.bus")

MAX_BATCH = 2000  # messages delivered per loop callback; the rest waits for the next one
EVENT_TYPES = ("message", "messageerror")


class MessageEvent:
    """One delivered message. ``data`` is this receiver's own decoded copy.

    ``seq`` is the hub's sequence number (``None`` for a follower's own message delivered inside
    the posting process before the hub sequenced it, and in degraded in-process mode);
    ``sender`` is the posting bus's member id; ``target`` the receiving channel. For
    ``messageerror`` events ``data`` is ``None`` and ``error`` says what was wrong.
    """

    __slots__ = ("data", "error", "sender", "seq", "target", "type")

    def __init__(
        self,
        type: str,
        data: Any,
        seq: int | None,
        sender: str | None,
        target: BroadcastChannel,
        error: str | None = None,
    ) -> None:
        self.type = type
        self.data = data
        self.seq = seq
        self.sender = sender
        self.target = target
        self.error = error

    def __repr__(self) -> str:
        return f"<MessageEvent {self.type} seq={self.seq} sender={self.sender}>"


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
        bus._attach(self)

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
        self._bus._post(self, data)

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
        # Like a DOM event handler attribute: one listener slot, keeping its position.
        if type not in self._handlers:
            self._handlers[type] = None
            slot_type = type

            def slot(event: MessageEvent) -> None:
                handler = self._handlers.get(slot_type)
                if handler is not None:
                    handler(event)

            self.add_listener(type, slot)
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
            self._bus._detach(self)

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


# (receivers, poster, raw, decoded copy, seq, sender, error, post time)
Item = tuple[
    tuple[BroadcastChannel, ...], Any, Any, Any, "int | None", "str | None", "str | None", int
]


class Dispatcher:
    """In-process delivery: one loop callback drains a whole batch of posted messages."""

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

    def call(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` after every delivery queued so far (keeps state answers in order)."""
        self.push((None, fn, None, None, None, None, None, 0))  # type: ignore[arg-type]

    def clear(self) -> None:
        self._q.clear()

    def _drain(self) -> None:
        self._scheduled = False
        q = self._q
        popleft = q.popleft
        for _ in range(min(len(q), MAX_BATCH)):
            receivers, poster, raw, copy, seq, sender, error, t = popleft()
            if receivers is None:
                try:
                    poster()
                except Exception:
                    log.exception("bus: queued callback raised")
                continue
            for ch in receivers:
                if ch is poster or ch._closed or ch._born > t:
                    continue
                listeners = ch._msg
                if error is None and (listeners or ch._err):
                    if copy is not None:
                        data, copy = copy, None
                    else:
                        try:
                            data = decode_json(raw)
                        except Exception as exc:
                            _call(
                                ch._err,
                                MessageEvent(
                                    "messageerror",
                                    None,
                                    seq,
                                    sender,
                                    ch,
                                    f"undecodable data: {exc}",
                                ),
                            )
                            continue
                    event = MessageEvent("message", data, seq, sender, ch)
                    for cb in listeners:
                        try:
                            cb(event)
                        except Exception:
                            log.exception("BroadcastChannel %r: message listener raised", ch._name)
                elif error is not None and ch._err:
                    _call(ch._err, MessageEvent("messageerror", None, seq, sender, ch, error))
        if q and not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._drain)
