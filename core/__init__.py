"""Concord's sync core: pure asyncio, no Qt (docs/architecture.md §1).

``from core import Client, ClientConfig`` is the facade the app uses; the names are loaded on
first use so that ``core.protocol`` (which the server imports) stays light.
"""

from typing import TYPE_CHECKING, Any

__all__ = [
    "CacheTooNew",
    "Client",
    "ClientConfig",
    "ConversationView",
    "MessageView",
    "SyncStatus",
]

if TYPE_CHECKING:
    from .client import Client, ClientConfig
    from .engine import SyncStatus
    from .model import ConversationView, MessageView
    from .store import CacheTooNew


def __getattr__(name: str) -> Any:
    if name in ("Client", "ClientConfig"):
        from . import client

        return getattr(client, name)
    if name == "CacheTooNew":  # Client.open: a newer Concord's cache holding unsent actions
        from .store import CacheTooNew

        return CacheTooNew
    if name == "SyncStatus":
        from .engine import SyncStatus

        return SyncStatus
    if name in ("ConversationView", "MessageView"):
        from . import model

        return getattr(model, name)
    raise AttributeError(name)
