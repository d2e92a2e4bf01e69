"""How a shared limit (``throttle_redis``, ``stream_cap_redis``) lives through a Redis outage.

After a failed call Redis is left alone for ``retry_s`` and the limit decides on this
instance's own count meanwhile: neither open nor closed. Each such decision is counted in
``concord_shared_limits_fallbacks_total{limit=…}``; an outage logs one warning when it starts
and one line when Redis answers again, not one per request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from .metrics import Metrics


class RedisOutage:
    """Whether to try Redis now, and the counts and log lines of its outages (on ``log``, the
    limit's own logger: its lines keep their source)."""

    def __init__(
        self,
        label: str,
        log: logging.Logger,
        messages: tuple[str, str],
        retry_s: float,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label  # the metric's ``limit`` label
        self.log = log
        self.unreachable, self.back = messages  # the outage's first and last log lines
        self.retry_s = retry_s
        self.metrics = metrics
        self.clock = clock
        self.fallbacks = 0  # decisions taken by this instance alone
        self.errors = 0  # failed calls
        self._down_until = 0.0

    def up(self) -> bool:
        """Redis may be tried: it has not failed within the last ``retry_s``."""
        return self.clock() >= self._down_until

    @property
    def down(self) -> bool:
        """An outage started and Redis has not answered since."""
        return self._down_until != 0.0

    def failed(self, exc: BaseException) -> None:
        self.errors += 1
        if not self.down:
            self.log.warning("%s: %s", self.unreachable, exc)
        self._down_until = self.clock() + self.retry_s

    def answered(self) -> None:
        if self.down:
            self.log.info("%s", self.back)
            self._down_until = 0.0

    def fell_back(self) -> None:
        self.fallbacks += 1
        if self.metrics is not None:
            self.metrics.shared_limits_fallbacks.labels(self.label).inc()


__all__ = ["RedisOutage"]
