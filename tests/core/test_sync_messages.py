"""The ``concord.sync`` messages are typed structs: every kind survives the bus's JSON, and a
message that is not one of them is logged, counted and ignored — never a crash."""

from __future__ import annotations

import logging

import msgspec
import pytest

from core import protocol as p
from core.bus import BroadcastChannel
from core.engine import SyncStatus
from core.sync_messages import (
    CHANNEL,
    ConflictRaised,
    DraftChanged,
    ErrorRaised,
    Hello,
    OlderLoaded,
    OlderWanted,
    OutboxChanged,
    RowsApplied,
    StatusReport,
    Visibility,
    decode,
    encode,
)
from tests.support.waiting import wait_until

THEIRS = p.Conversation(
    id="c1",
    title="theirs",
    pinned=False,
    creator="bob",
    members=["alice", "bob"],
    version=3,
    created_at=1,
    updated_at=2,
    message_count=0,
    read_seq=0,
    unread=0,
)

EVERY_KIND = [
    RowsApplied(upserted=["c1"], removed=["c2"], messages={"c1": [4, 5]}),
    OutboxChanged(),
    StatusReport(status=SyncStatus("live", "Live", "leader", cursor="1:5", target="h:1")),
    Visibility(member="m1", visible=False),
    Hello(),
    ConflictRaised(cid="c1", mine={"title": "mine", "_origin": "m1"}, theirs=THEIRS, entry=7),
    ConflictRaised(cid="c1", mine={"delete": True}, theirs=None, entry=7, entries=[7, 8]),
    ErrorRaised(kind="rejected", message="send refused: taken", cid="c1"),
    ErrorRaised(kind="keyring", message="no backend"),
    OlderWanted(cid="c1", before=11, limit=50),
    OlderWanted(cid="c1", before=None, limit=50),
    OlderLoaded(cid="c1"),
    DraftChanged(cid="c1"),
    DraftChanged(cid="c1", restored="are you there?"),
]


@pytest.mark.parametrize("message", EVERY_KIND, ids=lambda m: type(m).__name__)
def test_every_kind_survives_the_bus_json(message: object) -> None:
    data = encode(message)  # type: ignore[arg-type]
    assert msgspec.json.decode(msgspec.json.encode(data)) == data  # a plain JSON value
    assert decode(data) == message


@pytest.mark.parametrize(
    "data",
    [
        {"t": "nonsense"},
        {"no": "tag"},
        {"t": "applied", "upserted": ["c1"]},  # a field missing
        {"t": "visible", "member": "m1", "visible": "yes"},  # a field of the wrong type
        {"t": "hello", "extra": 1},  # an unknown field
    ],
)
def test_a_malformed_message_is_a_validation_error(data: dict[str, object]) -> None:
    with pytest.raises(msgspec.ValidationError):
        decode(data)


async def test_a_malformed_message_is_logged_counted_and_ignored(
    live_server, clients, caplog
) -> None:  # type: ignore[no-untyped-def]
    leader = await clients(live_server.url, "alice", "dev")
    follower = await clients(live_server.url, "alice", "dev")
    await wait_until(lambda: follower.status.state == "live", what="the follower to show live")
    rogue = BroadcastChannel(CHANNEL, bus=follower.sync_bus)
    try:
        with caplog.at_level(logging.WARNING, logger="core.leadership"):
            rogue.post_message({"t": "applied", "upserted": "not a list"})
            rogue.post_message({"t": "who knows"})
            await wait_until(lambda: leader.leadership.bad_messages == 2, what="both ignored")
        assert sum("bad bus message ignored" in r.getMessage() for r in caplog.records) >= 2
    finally:
        rogue.close()
    # Both still work: a change made in the follower reaches the leader.
    conv = await follower.create_conversation("after the noise")
    await follower.wait_synced(15)
    await wait_until(lambda: leader.conversation(conv.id) is not None, what="the leader sees it")
