"""sync_state's pacing (throttle, debounce) on a manual clock: exact, no real time involved."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from core.bus._sync_state import _Pacer


class FakeTimers:
    """``call_later`` on a manual clock."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[list[Any]] = []  # [when, callback, cancelled]

    def call_later(self, delay: float, callback: Callable[[], None]) -> Any:
        timer = [self.now + delay, callback, False]
        self.timers.append(timer)

        class Handle:
            def cancel(self) -> None:
                timer[2] = True

        return Handle()

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while due := [t for t in self.timers if not t[2] and t[0] <= end]:
            timer = min(due, key=lambda t: t[0])
            timer[2], self.now = True, timer[0]
            timer[1]()
        self.now = end


def make_pacer(throttle: float, debounce: float) -> tuple[_Pacer, FakeTimers, list[float]]:
    timers, flushes = FakeTimers(), []
    pacer = _Pacer(lambda: flushes.append(timers.now), throttle, debounce, timers.call_later)
    return pacer, timers, flushes


def test_throttle_has_a_leading_and_a_trailing_edge() -> None:
    pacer, timers, flushes = make_pacer(throttle=1.0, debounce=0)
    pacer.touch()  # leading edge
    for _ in range(5):
        timers.advance(0.1)
        pacer.touch()
    timers.advance(2.0)
    assert flushes == [0.0, 1.0]  # at most one per window; the trailing one ends the first
    pacer.touch()  # at 2.5 the second window (1.0-2.0) has ended quietly: a new leading edge
    assert flushes == [0.0, 1.0, 2.5]
    pacer.cancel()
    pacer.touch()
    assert flushes == [0.0, 1.0, 2.5, 2.5]


def test_debounce_waits_for_quiet() -> None:
    pacer, timers, flushes = make_pacer(throttle=0, debounce=0.5)
    for _ in range(10):
        pacer.touch()
        timers.advance(0.2)
    assert flushes == []
    timers.advance(0.3)
    assert flushes == [pytest.approx(2.3)]  # last touch at 1.8, then 0.5 s of quiet


def test_debounce_then_throttle() -> None:
    pacer, timers, flushes = make_pacer(throttle=1.0, debounce=0.1)
    pacer.touch()
    timers.advance(0.15)  # quiet at 0.1: leading flush, window until 1.1
    pacer.touch()
    timers.advance(2)  # quiet at 0.35, inside the window: trailing flush at 1.1
    assert flushes == [pytest.approx(0.1), pytest.approx(1.1)]
