"""The delivery position driven directly, without sockets: sequencing, acks, replay decisions
and fencing (``core/bus/_position.py``)."""

from __future__ import annotations

import pytest

from core.bus._position import Position, replay_start


def at(epoch: int, seq: int) -> Position:
    """A member that has seen ``epoch`` and processed up to ``seq`` in it."""
    pos = Position()
    pos.lead(epoch)
    pos.adopt(epoch, seq)
    return pos


def test_a_new_position_has_seen_nothing() -> None:
    pos = Position()
    assert (pos.epoch, pos.seq, pos.max_epoch) == (0, 0, 0)


def test_leader_issues_consecutive_seqs_from_the_base() -> None:
    pos = at(3, 40)
    pos.lead(4)  # a new epoch continues from the old seq
    assert (pos.epoch, pos.seq, pos.max_epoch) == (4, 40, 4)
    assert [pos.issue() for _ in range(3)] == [41, 42, 43]
    assert pos.seq == 43


def test_follower_advances_and_drops_replayed_copies() -> None:
    pos = at(2, 10)
    assert pos.advance(11) and pos.seq == 11
    assert not pos.advance(11) and not pos.advance(5)  # replayed twice: no change
    assert pos.advance(15) and pos.seq == 15  # our own 12-14 came with acks: not a gap here


def test_an_ack_moves_the_position_only_forward() -> None:
    pos = at(2, 10)
    pos.advance(12)  # the ack of our own message at seq 12
    pos.advance(11)  # an older ack changes nothing
    assert pos.seq == 12


def test_welcome_of_a_new_member_starts_now_without_replay_or_gap() -> None:
    pos = Position()
    assert pos.welcome(5, last_seq=30, base_seq=20, base_epoch=4, replay_from=31) is None
    assert (pos.epoch, pos.seq, pos.max_epoch) == (5, 30, 5)


def test_welcome_of_the_same_epoch_continues_where_the_member_was() -> None:
    pos = at(5, 25)
    assert pos.welcome(5, last_seq=30, base_seq=20, base_epoch=4, replay_from=26) is None
    assert (pos.epoch, pos.seq) == (5, 25)  # 26..30 are being replayed


def test_welcome_of_a_new_epoch_is_in_step_only_from_the_leaders_position() -> None:
    in_step = at(4, 20)
    assert in_step.welcome(5, last_seq=30, base_seq=20, base_epoch=4, replay_from=21) is None
    assert (in_step.epoch, in_step.seq) == (5, 20)
    behind = at(4, 18)  # missed 19-20 of the old epoch: the new leader had them
    assert behind.welcome(5, last_seq=30, base_seq=20, base_epoch=4, replay_from=21) == 21
    assert (behind.epoch, behind.seq) == (5, 20)


def test_welcome_reports_a_gap_when_the_replay_does_not_reach_back() -> None:
    pos = at(5, 10)
    assert pos.welcome(5, last_seq=100, base_seq=0, base_epoch=4, replay_from=60) == 60
    assert pos.seq == 59


@pytest.mark.parametrize(("seen", "hub", "stale"), [(5, 4, True), (5, 5, False), (5, 6, False)])
def test_fencing_refuses_hubs_older_than_an_epoch_seen(seen: int, hub: int, stale: bool) -> None:
    pos = at(seen, 1)
    assert pos.is_stale(hub) is stale


def test_max_epoch_never_goes_back() -> None:
    pos = at(7, 0)
    pos.adopt(3, 9)
    assert pos.max_epoch == 7 and pos.epoch == 3
    pos.welcome(7, last_seq=2, base_seq=0, base_epoch=6, replay_from=1)
    assert pos.max_epoch == 7


def test_replay_start_for_each_kind_of_member() -> None:
    assert replay_start(last_epoch=5, last_seq=12, epoch=5, base_seq=3) == 13  # same epoch
    assert replay_start(last_epoch=4, last_seq=99, epoch=5, base_seq=3) == 4  # older epoch
    assert replay_start(last_epoch=0, last_seq=0, epoch=5, base_seq=3) is None  # new member
