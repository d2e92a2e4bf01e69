"""RedisOutage: what both shared limits do while Redis is away (server/redis_outage.py)."""

from __future__ import annotations

import logging

import pytest

from server.metrics import Metrics
from server.redis_outage import RedisOutage

LOG = logging.getLogger("tests.redis_outage")
LINES = ("stream cap: Redis unreachable, the cap holds per instance", "stream cap: Redis is back")


def test_an_outage_logs_once_backs_off_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    outage = RedisOutage("streams", LOG, LINES, 30.0, metrics)
    assert outage.up() and not outage.down
    with caplog.at_level(logging.INFO, logger=LOG.name):
        outage.failed(ConnectionError("refused"))
        outage.failed(ConnectionError("refused again"))
        outage.fell_back()
        outage.fell_back()
        assert not outage.up()  # left alone for retry_s
        assert outage.down
        outage.answered()
        outage.answered()  # no second "back" line
    lines = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
    assert lines == [
        (LOG.name, "WARNING", f"{LINES[0]}: refused"),  # on the limit's own logger
        (LOG.name, "INFO", LINES[1]),
    ]
    assert outage.up() and not outage.down
    assert (outage.errors, outage.fallbacks) == (2, 2)
    assert 'concord_shared_limits_fallbacks_total{limit="streams"} 2.0' in metrics.render().decode()


def test_redis_is_tried_again_after_retry_s() -> None:
    now = [1000.0]
    outage = RedisOutage("sign_in", LOG, LINES, 1.0, clock=lambda: now[0])
    outage.failed(OSError("down"))
    now[0] += 0.99
    assert not outage.up()
    now[0] += 0.01
    assert outage.up() and outage.down  # tried again, but no answer yet: still an outage
    outage.failed(OSError("still down"))  # the back-off starts again from this failure
    now[0] += 0.5
    assert not outage.up()
