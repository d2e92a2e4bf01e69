"""Refusals and tokens: a permanent 4xx rolls the action back with an error, an expired access
token is refreshed without the user noticing, a refused refresh asks for sign-in."""

from __future__ import annotations

import pytest

from tests.support.live_server import LiveServer, add_users
from tests.support.waiting import wait_until


async def test_permanent_refusal_rolls_back_and_reports(live_server, clients) -> None:
    a = await clients(live_server.url, "alice", "d1")
    errors: list = []
    a.events.error.connect(errors.append)
    conv = await a.create_conversation("team")
    await a.wait_synced(10)
    await a.set_members(conv.id, ["bob", "nobody-by-that-name"])
    assert a.conversation(conv.id).pending
    await wait_until(lambda: errors, what="an error event")
    assert errors[0].kind == "rejected" and "unknown" in errors[0].message
    await a.wait_synced(10)
    view = a.conversation(conv.id)
    assert view.members == ("alice",) and not view.pending  # rolled back to the server's row


async def test_bad_input_is_refused_before_it_reaches_the_outbox(live_server, clients) -> None:
    a = await clients(live_server.url, "alice", "d1")
    conv = await a.create_conversation("x")
    await a.wait_synced(10)  # the create is acknowledged and applied: the outbox is empty
    assert a.store.outbox() == []
    changes: list = []
    a.events.outbox_changed.connect(changes.append)
    with pytest.raises(ValueError):
        await a.rename_conversation(conv.id, "   ")
    with pytest.raises(ValueError):
        await a.create_conversation("t" * 201)
    with pytest.raises(ValueError):
        await a.send_message(conv.id, "é" * 40_000)  # 80 KB of UTF-8
    assert a.store.outbox() == [] and changes == []  # nothing was queued, not even briefly
    view = a.conversation(conv.id)
    assert (view.title, view.pending, a.messages(conv.id)) == ("x", False, [])
    assert [c.id for c in a.conversations()] == [conv.id]


async def test_expired_access_token_is_refreshed(tmp_path, clients) -> None:
    data = tmp_path / "srv"
    data.mkdir()
    add_users(data)
    # No reauth event before expiry (the lead is negative): the client cannot refresh ahead, so
    # its token really expires, the stream ends, and the reconnect meets a 401 and refreshes.
    # (With a lead, whether the token ever expired first was a race: the test was flaky.)
    server = LiveServer(data, heartbeat_s=0.5, access_ttl_s=1.0, reauth_lead_s=-60)
    try:
        a = await clients(server.url, "alice", "d1")
        await wait_until(lambda: a.status.state == "live", what="live")
        first, first_expiry = a.credentials.access_token, a.credentials.access_expires_at
        await wait_until(
            lambda: a.credentials.access_token != first,
            timeout=10,
            what="a new token once the first expired",
        )
        # The new token (1 s long) was issued after the first one expired, not ahead of time.
        assert a.credentials.access_expires_at - 1000 >= first_expiry
        conv = await a.create_conversation("after expiry")
        await a.wait_synced(10)
        assert a.credentials.access_token != first
        assert a.conversation(conv.id) is not None and not a.conversation(conv.id).pending
        await wait_until(lambda: a.status.state == "live", what="live again")
    finally:
        server.stop()


async def test_refused_refresh_means_sign_in_required(tmp_path, clients) -> None:
    data = tmp_path / "srv"
    data.mkdir()
    add_users(data)
    server = LiveServer(data, heartbeat_s=0.5, access_ttl_s=1.0, reauth_lead_s=0.2)
    try:
        a = await clients(server.url, "alice", "d1")
        await wait_until(lambda: a.status.state == "live", what="live")
        server.revoke_sessions()
        await wait_until(
            lambda: a.status.state == "sign_in_required", timeout=10, what="sign_in_required"
        )
        await a.sign_in("pw-for-tests")
        await wait_until(lambda: a.status.state == "live", timeout=10, what="live after sign-in")
    finally:
        server.stop()
