"""What every endpoint needs: settings, storage, the feed hub, tokens and metrics."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request

from .auth import Tokens
from .feed import FeedHub
from .metrics import Metrics
from .settings import Settings
from .storage import Storage, WriteResult
from .throttle import SignInGuard
from .tickets import StreamTickets


@dataclass
class AppContext:
    settings: Settings
    storage: Storage
    metrics: Metrics
    tokens: Tokens
    sign_in: SignInGuard
    hub: FeedHub = field(default_factory=lambda: FeedHub(0))
    # Replaced at startup by one keyed with the database's secret (see create_app).
    tickets: StreamTickets = field(default_factory=StreamTickets.ephemeral)

    def committed(self, result: WriteResult) -> object:
        """Publish a committed write's change rows to open streams; return its answer."""
        if result.changes:
            self.metrics.changes_appended.inc(len(result.changes))
            self.hub.publish(result.changes)
        return result.value


def context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx
