"""The bridge turns core events into Qt signals, coalescing bursts to one delivery per frame."""

from __future__ import annotations

from tests.support.waiting import wait_until
from ui.bridge import ClientBridge
from ui.models import ConversationListModel


async def test_remote_changes_reach_a_model_in_few_deliveries(live_server, clients) -> None:
    a = await clients(live_server.url, "alice", "d1")
    b = await clients(live_server.url, "bob", "d1")
    bridge = ClientBridge(b)
    model = ConversationListModel(b.conversations())
    bridge.conversationsChanged.connect(model.apply)
    resets: list[int] = []
    model.modelReset.connect(lambda: resets.append(1))
    for i in range(30):
        await a.create_conversation(f"c{i}", ["bob"])
    await a.wait_synced(15)
    await wait_until(lambda: model.rowCount() == 30, what="30 rows in bob's model")
    assert bridge.deliveries < 30 and not resets
    titles = {model.view(r).title for r in range(30)}
    assert titles == {f"c{i}" for i in range(30)}
    bridge.close()
