"""The soak's outbox-drain figure (``soak_drain``) on made-up event lines: what counts as a
recovery, when a sample ends, when it is censored, and the percentiles."""

from __future__ import annotations

from typing import Any

from .soak_drain import DRAINED, ProcessLog, device_recoveries, drain_figure, percentile


def status(t: float, state: str, unsent: int, role: str = "leader") -> dict[str, Any]:
    return {"event": "status", "state": state, "role": role, "t": t, "unsent": unsent}


def outbox(t: float, count: int) -> dict[str, Any]:
    return {"event": "outbox", "count": count, "leader": True, "t": t}


def test_a_recovery_with_unsent_entries_is_measured_until_the_outbox_is_empty() -> None:
    a1 = [
        {"event": "ready", "role": "leader", "state": "connecting", "t": 0.0, "unsent": 0},
        status(0.1, "live", 0),  # nothing unsent: not a sample
        outbox(0.5, 1),
        status(1.0, "reconnecting", 1),
        outbox(1.2, 2),
        status(2.0, "live", 2),
        outbox(2.1, 3),  # more work while draining: the sample waits for it too
        outbox(2.3, 1),
        outbox(2.4, 0),
    ]
    (r,) = device_recoveries("A", [ProcessLog("A1", a1)], end=10.0)
    assert (r.leader, r.unsent, r.after, r.ended) == ("A1", 2, "reconnecting", DRAINED)
    assert round(r.waited_s, 3) == 0.4 and round(r.first_settled_s or 0, 3) == 0.3


def test_followers_do_not_count_and_a_polling_leader_is_reached() -> None:
    a1 = [status(0.0, "unreachable", 2), status(1.0, "polling", 2), outbox(1.5, 0)]
    a2 = [status(0.0, "live", 2, role="follower"), outbox(0.2, 0)]  # a follower's view
    (r,) = device_recoveries("A", [ProcessLog("A1", a1), ProcessLog("A2", a2)], end=10.0)
    assert r.ended == DRAINED and round(r.waited_s, 3) == 0.5


def test_censored_when_the_server_is_lost_again_the_leader_dies_or_the_soak_ends() -> None:
    lost = [status(0.0, "unreachable", 3), status(1.0, "live", 3), status(1.5, "reconnecting", 3)]
    (r,) = device_recoveries("A", [ProcessLog("A1", lost)], end=10.0)
    assert r.censored and r.ended.startswith("server lost again") and r.first_settled_s is None
    a1 = [status(0.0, "unreachable", 3), status(1.0, "live", 3), outbox(1.1, 2), outbox(3.0, 0)]
    (r,) = device_recoveries("A", [ProcessLog("A1", a1, killed_at=2.0)], end=10.0)
    assert r.ended == "leader killed" and round(r.waited_s, 3) == 1.0  # later lines ignored
    assert round(r.first_settled_s or 0, 3) == 0.1
    (r,) = device_recoveries("A", [ProcessLog("A1", a1[:3])], end=5.0)
    assert r.ended == "soak ended" and round(r.waited_s, 3) == 4.0


def test_a_failover_is_a_recovery_of_the_new_leader() -> None:
    a1 = [status(0.0, "live", 0), outbox(0.5, 2)]
    a2 = [
        status(0.1, "live", 0, role="follower"),
        status(1.2, "connecting", 2),  # it leads now, not reached yet
        status(1.5, "live", 2),
        outbox(1.7, 1),
        outbox(1.8, 0),
    ]
    logs = [ProcessLog("A1", a1, killed_at=1.0), ProcessLog("A2", a2)]
    (r,) = device_recoveries("A", logs, end=10.0)
    assert (r.leader, r.after, r.ended) == ("A2", "connecting (new leader)", DRAINED)
    assert round(r.waited_s, 3) == 0.3


def test_percentiles_are_nearest_rank_and_the_summary_counts_censored_apart() -> None:
    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0 and percentile([1.0, 2.0, 3.0], 0.99) == 3.0
    assert percentile([float(i) for i in range(1, 201)], 0.99) == 198.0
    fast = [status(0.0, "unreachable", 1), status(1.0, "live", 1), outbox(1.2, 0)]
    slow = [status(0.0, "unreachable", 1), status(1.0, "live", 1), status(4.0, "unreachable", 1)]
    fig = drain_figure({"A": [ProcessLog("A1", fast)], "B": [ProcessLog("B1", slow)]}, end=9.0)
    assert fig.samples == [fig.recoveries[0].waited_s] and len(fig.censored) == 1
    assert fig.p99_floor == 3.0 and len(fig.stuck) == 1
    samples, censored = fig.summary()
    assert "over 1 samples" in samples and not fig.misses_target
    assert censored.startswith("censored 1 (server lost again (unreachable) 1)")


def test_the_target_is_missed_only_on_enough_samples() -> None:
    def drained_after(seconds: float) -> list[dict[str, Any]]:
        return [status(0.0, "unreachable", 1), status(1.0, "live", 1), outbox(1.0 + seconds, 0)]

    few = [ProcessLog("A1", drained_after(2.0))]
    assert not drain_figure({"A": few}, end=9.0).misses_target  # one sample says little
    logs = {f"D{i}": [ProcessLog(f"D{i}1", drained_after(0.1 * i))] for i in range(1, 5)}
    assert not drain_figure(logs, end=9.0).misses_target
    logs["D5"] = [ProcessLog("D51", drained_after(1.5))]
    fig = drain_figure(logs, end=9.0)
    assert (
        fig.misses_target and round(fig.p99 or 0, 3) == 1.5 and "TARGET MISSED" in fig.summary()[0]
    )
