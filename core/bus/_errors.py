"""Exceptions raised by :mod:`core.bus` (named after their WHATWG ``DOMException`` names)."""

from __future__ import annotations


class DataCloneError(ValueError):
    """``post_message`` data is not a JSON value that survives a round trip unchanged."""


class InvalidStateError(RuntimeError):
    """The channel (or its bus) is closed."""
