"""``sync_state`` with any store that has the protocol (across two real processes:
``tests/e2e/bus/test_sync_state_processes.py``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from core.bus._sync_state import LOCAL, sync_state
from tests.support.waiting import wait_until


class DictStore:
    """The least a store needs (ObservableStore): get, update with origin, subscribe."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.listeners: list[Callable[[dict[str, Any], str], None]] = []

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def update(self, values: Mapping[str, Any], *, origin: str = LOCAL) -> None:
        self.data.update(values)
        for listener in self.listeners:
            listener(dict(values), origin)

    def subscribe(self, callback: Callable[[dict[str, Any], str], None]) -> Callable[[], None]:
        self.listeners.append(callback)
        return lambda: self.listeners.remove(callback)


async def test_any_store_with_the_protocol(open_bus, caplog) -> None:
    a, b = DictStore(), DictStore()
    async with (
        sync_state(a, "prefs", bus=await open_bus()),
        sync_state(b, "prefs", bus=await open_bus()),
    ):
        a.update({"zoom": {1, 2}})  # not JSON: logged, not synced
        a.update({"zoom": 1.25})
        await wait_until(lambda: b.get("zoom") == 1.25, "b sees the zoom", timeout=5)
    assert "not a JSON value" in caplog.text
