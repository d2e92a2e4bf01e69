"""``Signal``: a typed event that callbacks connect to (napari's events, psygnal's shape, no deps).

``Signal[[ConversationView]]`` accepts only callbacks taking a ``ConversationView``, so mypy checks
every connection (``ui/bridge.py`` included). Callbacks run in connection order; one that raises is
logged and the others still run. Connecting or disconnecting while an emit is under way takes
effect from the next emit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, ParamSpec

__all__ = ["Signal"]

P = ParamSpec("P")

log = logging.getLogger(__name__)


class Signal(Generic[P]):
    """One event with a fixed argument shape ``P``; ``connect`` returns a disconnect callable."""

    __slots__ = ("_callbacks", "_on_connect", "name")

    def __init__(
        self, name: str, on_connect: Callable[[Callable[P, object]], None] | None = None
    ) -> None:
        self.name = name
        self._callbacks: tuple[Callable[P, object], ...] = ()
        self._on_connect = on_connect  # e.g. replay what was emitted before anyone listened

    def connect(self, callback: Callable[P, object]) -> Callable[[], None]:
        self._callbacks = (*self._callbacks, callback)
        if self._on_connect is not None:
            self._on_connect(callback)
        return lambda: self.disconnect(callback)

    def disconnect(self, callback: Callable[P, object]) -> None:
        """Remove ``callback`` (every connection of it); unknown callbacks are ignored."""
        self._callbacks = tuple(c for c in self._callbacks if c is not callback)

    @property
    def connected(self) -> bool:
        """Whether anyone listens (lets an emitter skip building costly arguments)."""
        return bool(self._callbacks)

    def emit(self, *args: P.args, **kwargs: P.kwargs) -> None:
        for callback in self._callbacks:
            try:
                callback(*args, **kwargs)
            except Exception:
                log.exception("%s listener failed", self.name)

    def __repr__(self) -> str:
        return f"<Signal {self.name} ({len(self._callbacks)} connected)>"
