"""``serve --redis-prefix`` (env ``CONCORD_REDIS_PREFIX``): deployments sharing one Redis."""

from __future__ import annotations

import pytest

from server.cli import parser


def test_redis_prefix_defaults_to_concord() -> None:
    assert parser().parse_args(["serve"]).redis_prefix == "concord:"


def test_redis_prefix_from_flag_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parser().parse_args(["serve", "--redis-prefix", "team-a:"]).redis_prefix == "team-a:"
    monkeypatch.setenv("CONCORD_REDIS_PREFIX", "team-b:")
    assert parser().parse_args(["serve"]).redis_prefix == "team-b:"
