"""The sync inspector on a real leader and a real follower (two ``Client``s of one profile and
one cache): SSE ``change``/``hello`` lines, bus lines, the status panel, the bounded log, and
that it stops listening when closed."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from tests.support.waiting import wait_until
from ui.inspector import SyncInspector, lag_text


def has(inspector: SyncInspector, *words: str) -> bool:
    return any(all(w in line for w in words) for line in inspector.lines())


class FakeSignal:
    """Records its callbacks in a list the test reads."""

    def __init__(self, callbacks: list[Any]) -> None:
        self.callbacks = callbacks

    def connect(self, cb: Any) -> Any:
        self.callbacks.append(cb)
        return lambda: self.callbacks.remove(cb)


class FakeClient:
    """Just enough of a client for the log and the panel."""

    def __init__(self) -> None:
        from core.engine import SyncStatus

        self.status = SyncStatus("live", "Live", cursor="1:5", last_event_at=None)
        self.listeners: dict[str, list[Any]] = {"trace": [], "status_changed": []}
        self.events = SimpleNamespace(**{k: FakeSignal(v) for k, v in self.listeners.items()})
        self.leadership = None
        self.store = self

    def cursor_id(self) -> str:
        return "1:5"

    def outbox(self) -> list[Any]:
        return []


def test_lag_uses_the_head_when_known_else_the_last_event() -> None:
    assert lag_text("3:10", "3:14", None, 100.0) == "4 change(s) behind"
    assert lag_text("3:14", "3:14", None, 100.0) == "up to date"
    assert lag_text("3:10", "4:2", 90.0, 100.0) == "last event 10 s ago"  # another epoch
    assert lag_text(None, None, None, 100.0) == "no event from the server yet"


def test_the_log_is_bounded_and_closing_unsubscribes(qtbot) -> None:  # type: ignore[no-untyped-def]
    client = FakeClient()
    inspector = SyncInspector(client, max_lines=50)  # type: ignore[arg-type]
    qtbot.addWidget(inspector)
    inspector.show()
    for i in range(200):
        for cb in client.listeners["trace"]:
            cb("sse", f"change 1:{i}")
    lines = inspector.lines()
    assert len(lines) <= 50 and lines[-1].endswith("change 1:199")
    assert inspector.fields["cursor"].text() == "1:5"
    assert inspector.fields["outbox"].text() == "empty"
    inspector.close()
    assert client.listeners == {"trace": [], "status_changed": []}
    assert not inspector.timer.isActive()
    inspector.show()  # shown again: listening again
    assert len(client.listeners["trace"]) == 1
    inspector.deleteLater()
    qtbot.waitUntil(lambda: client.listeners["trace"] == [], timeout=2000)


async def test_inspector_shows_sse_and_bus_lines_for_a_leader_and_a_follower(
    live_server, clients, qtbot
) -> None:  # type: ignore[no-untyped-def]
    leader = await clients(live_server.url, "alice", "dev")
    follower = await clients(live_server.url, "alice", "dev")  # same cache: the same profile bus
    assert leader.leadership.leading and not follower.leadership.leading
    li = SyncInspector(leader, refresh_ms=100)
    fi = SyncInspector(follower, refresh_ms=100)
    for inspector in (li, fi):
        qtbot.addWidget(inspector)
        inspector.show()

    await follower.create_conversation("from the follower")
    await follower.wait_synced(15)
    await wait_until(lambda: has(li, "sse", "change"), what="an SSE change line on the leader")
    await wait_until(lambda: has(li, "bus", "outbox from"), what="the follower's outbox post")
    await wait_until(lambda: has(fi, "bus", "applied from"), what="the leader's applied post")
    await wait_until(lambda: has(fi, "status", "live (follower)"), what="follower status line")

    bus = leader.sync_bus
    await wait_until(
        lambda: li.fields["cursor"].text() == leader.store.cursor_id(), what="leader cursor"
    )
    assert li.fields["role"].text().startswith("leader")
    assert li.fields["epoch"].text() == str(bus.epoch)
    assert li.fields["member"].text().startswith(str(bus.member_id))
    assert li.fields["members"].text().startswith("2 on the bus")
    assert li.fields["streams"].text() == "1 SSE stream (live)"
    assert li.fields["lag"].text().startswith("last event")
    assert fi.fields["role"].text().startswith("follower")
    assert fi.fields["epoch"].text() == str(follower.sync_bus.epoch) == str(bus.epoch)
    assert fi.fields["streams"].text().startswith("0 here")
    await wait_until(
        lambda: fi.fields["cursor"].text() == leader.store.cursor_id(), what="follower cursor"
    )

    # A new connection says hello: restart the server.
    def count(inspector: SyncInspector, *words: str) -> int:
        return sum(all(w in line for w in words) for line in inspector.lines())

    hellos, lives = count(li, "sse", "hello"), count(li, "status", "live (leader)")
    live_server.stop()
    await wait_until(lambda: has(li, "sse", "bye"), what="the server's bye")
    await wait_until(lambda: leader.status.state != "live", what="the leader to notice")
    live_server.restart()
    await wait_until(
        lambda: count(li, "sse", "hello") > hellos, timeout=15, what="a new SSE hello line"
    )
    await wait_until(lambda: count(li, "status", "live (leader)") > lives, what="live again")

    # Closed: no more lines, whatever happens.
    li.close()
    before, cursor = li.lines(), leader.store.cursor_id()
    applied = sum("applied from" in line for line in fi.lines())
    await follower.create_conversation("after closing")
    await follower.wait_synced(15)  # the leader got the change over SSE and applied it
    assert leader.store.cursor_id() != cursor
    await wait_until(
        lambda: sum("applied from" in line for line in fi.lines()) > applied,
        what="the follower to log it",
    )
    assert li.lines() == before
