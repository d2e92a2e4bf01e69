"""The delivery position and the sequencing decisions around it, free of sockets and loops.

A member's position is ``(epoch, seq)``: the last frame of the hub's total order it processed.
It travels in ``hello`` (``last_epoch``/``last_seq``), decides what a reconnecting member gets
replayed and whether it missed something (a gap), answers "which messages does this state
snapshot reflect", and is the base a new leader's epoch continues from. :class:`Position` is its
only writer; ``Hub`` (leading) and ``Link`` (following) call it, and unit tests drive it directly
(``tests/core/bus/test_position.py``).
"""

from __future__ import annotations

__all__ = ["Position", "replay_start"]


class Position:
    """``(epoch, seq)`` of the last hub frame this member processed, and the highest epoch it
    has seen (fencing). Read through the properties; change only through the methods."""

    __slots__ = ("_epoch", "_max_epoch", "_seq")

    def __init__(self) -> None:
        self._epoch = 0  # 0: never joined a hub (a new member: no replay)
        self._seq = 0
        self._max_epoch = 0

    @property
    def epoch(self) -> int:
        """The epoch of the hub this member follows or leads (0 before the first one)."""
        return self._epoch

    @property
    def seq(self) -> int:
        """The last sequence number processed in ``epoch``."""
        return self._seq

    @property
    def max_epoch(self) -> int:
        """The highest epoch seen: a hub of an older one is stale and refused."""
        return self._max_epoch

    # --- sequencing (the frame hot path: one call each, no allocation) ------------------------

    def issue(self) -> int:
        """Leader: the next sequence number of this epoch; the position moves onto it."""
        seq = self._seq = self._seq + 1
        return seq

    def advance(self, seq: int) -> bool:
        """Follower: a hub frame at ``seq`` (a message, or the ack of one of ours) has been
        processed. False, and no change, if the position is already there: a replayed copy."""
        if seq <= self._seq:
            return False
        self._seq = seq
        return True

    # --- epochs -------------------------------------------------------------------------------

    def lead(self, epoch: int) -> None:
        """This member now leads ``epoch``; its sequence continues from the current seq."""
        self._epoch = self._max_epoch = epoch

    def is_stale(self, epoch: int) -> bool:
        """Fencing: a hub of ``epoch`` is older than one this member has already seen."""
        return epoch < self._max_epoch

    def welcome(
        self, epoch: int, last_seq: int, base_seq: int, base_epoch: int, replay_from: int
    ) -> int | None:
        """Follower: adopt the position a hub's welcome implies; the seq of a gap, or None.

        ``last_seq``: the hub's last seq; ``(base_epoch, base_seq)``: where its epoch started;
        ``replay_from``: the first seq it replays to us (``last_seq + 1`` when none). A new
        member starts after ``last_seq``; one of the same epoch continues where it was; one of an
        older epoch continues from the base and is in step only if it was exactly there. If the
        replay does not reach back far enough, the member resumes at ``replay_from`` (a gap).
        """
        le, ls = self._epoch, self._seq
        gap = False
        if le == 0:  # a new member: starts now, no replay
            expected = last_seq + 1
        elif le == epoch:  # reconnecting to the same hub: replay from where we were
            expected = ls + 1
        else:  # a new epoch: in step only if we were where its leader was
            expected = base_seq + 1
            gap = (le, ls) != (base_epoch, base_seq)
        if replay_from > expected:  # the hub's replay buffer does not reach back far enough
            gap, expected = True, replay_from
        self.adopt(epoch, expected - 1)
        self._max_epoch = max(self._max_epoch, epoch)
        return expected if gap else None

    def adopt(self, epoch: int, seq: int) -> None:
        """Take ``(epoch, seq)`` as the position (the welcome of a hub decided it)."""
        self._epoch, self._seq = epoch, seq

    def __repr__(self) -> str:
        return f"<Position epoch={self._epoch} seq={self._seq} max_epoch={self._max_epoch}>"


def replay_start(last_epoch: int, last_seq: int, epoch: int, base_seq: int) -> int | None:
    """Hub: the first seq to replay to a member that says it was at ``(last_epoch, last_seq)``.

    The same epoch: right after where it was; an older one: from where this epoch began
    (``base_seq + 1``); a new member (``last_epoch`` 0): nothing (None).
    """
    if last_epoch == epoch:
        return last_seq + 1
    if last_epoch:
        return base_seq + 1
    return None
