"""Text a UI toolkit can hand over but UTF-8 cannot carry (a lone surrogate half, from a bad
paste or an emoji cut in two) is made well formed before it is stored or sent: it reaches every
device with U+FFFD in its place, and nothing crashes on the way (the cache, the outbox, the
server, search)."""

from __future__ import annotations

from core import protocol as p
from tests.support.waiting import wait_until

LONE = "ok \ud83d then"  # the high half of an emoji, alone
PAIR = "smile \ud83d\ude00"  # both halves apart, as UTF-16 code units


def test_well_formed_joins_pairs_and_replaces_lone_halves() -> None:
    assert p.well_formed(LONE) == "ok \ufffd then"
    assert p.well_formed(PAIR) == "smile \U0001f600"
    assert p.well_formed("plain é") == "plain é"
    assert p.search_terms("x\udc00y") == ["x", "y"]  # the replacement is a separator


async def test_a_lone_surrogate_is_sent_drafted_and_searched_without_a_crash(
    live_server, clients
) -> None:
    a = await clients(live_server.url, "alice", "d1")
    b = await clients(live_server.url, "bob", "d1")
    conv = await a.create_conversation("odd \udc00 title", ["bob"])
    assert conv.title == "odd \ufffd title"
    sent = await a.send_message(conv.id, LONE)
    assert sent.body == "ok \ufffd then"
    await a.wait_synced(10)
    await wait_until(
        lambda: [m.body for m in b.messages(conv.id)] == ["ok \ufffd then"], "bob to get it"
    )
    edited = await a.edit_message(conv.id, sent.id, PAIR)
    assert edited.body == "smile \U0001f600"
    a.set_draft(conv.id, LONE)
    assert a.draft(conv.id) == "ok \ufffd then"
    found = a.search("smile \ud83d")
    assert found.terms == ("smile",)
    await wait_until(
        lambda: [h.message.id for h in a.search("smile \ud83d").messages] == [sent.id],
        "the edited message to be found",
    )
    await a.wait_synced(10)  # the edit is on the server too
    server_hits = await a.search_server("smile \udc00")
    assert [h.message.id for h in server_hits.messages] == [sent.id]
