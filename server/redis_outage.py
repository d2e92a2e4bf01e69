"""How a shared limit (``throttle_redis``, ``stream_cap_redis``) lives through a Redis outage.

After a failed call Redis is left alone for ``retry_s`` and the limit decides on this
instance's own count meanwhile: neither open nor closed. Each such decision is counted in
``concord_shared_limits_fallbacks_total{limit=…}``; an outage logs one warning when it starts
and one line when Redis answers again, not one per request.
"""

from __future__ import annotations

import logging
import time

from .metrics import Metrics

log = logging.getLogger(__name__)


class RedisOutage:
    """Whether to try Redis now, and the counts and log lines of its outages."""

    def __init__(
        self,
        label: str,
        subject: str,
        fallback: str,
        retry_s: float,
        metrics: Metrics | None = None,
    ) -> None:
        self.label = label  # the metric's ``limit`` label
        self.subject = subject  # what the log lines are about
        self.fallback = fallback  # what holds meanwhile, for the log line
        self.retry_s = retry_s
        self.metrics = metrics
        self.fallbacks = 0  # decisions taken by this instance alone
        self.errors = 0  # failed calls
        self._down_until = 0.0

    def up(self) -> bool:
        """Redis may be tried: it has not failed within the last ``retry_s``."""
        return time.monotonic() >= self._down_until

    @property
    def down(self) -> bool:
        """An outage started and Redis has not answered since."""
        return self._down_until != 0.0

    def failed(self, exc: BaseException) -> None:
        self.errors += 1
        if not self.down:
            log.warning("%s: Redis unreachable, %s: %s", self.subject, self.fallback, exc)
        self._down_until = time.monotonic() + self.retry_s

    def answered(self) -> None:
        if self.down:
            log.info("%s: Redis is back, shared again", self.subject)
            self._down_until = 0.0

    def fell_back(self) -> None:
        self.fallbacks += 1
        if self.metrics is not None:
            self.metrics.shared_limits_fallbacks.labels(self.label).inc()


__all__ = ["RedisOutage"]
