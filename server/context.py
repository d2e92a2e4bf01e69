"""What every endpoint needs: settings, storage, the feed hub, tokens and metrics."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request

from .auth import Tokens
from .batch import FeedReads
from .feed import FeedHub
from .metrics import Metrics
from .pokes import NoPokes, Pokes
from .settings import Settings
from .storage import Storage, WriteResult
from .stream_cap import LocalStreamCap, StreamCap
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
    # max_streams_per_user; shared by every instance with --redis (server/stream_cap.py).
    stream_cap: StreamCap = field(default_factory=LocalStreamCap)
    # Pokes to and from other instances (--redis; server/pokes.py); none for one instance.
    pokes: Pokes = field(default_factory=NoPokes)
    reads: FeedReads = field(init=False)  # the streams' feed reads, batched and shared (§4.7)

    def __post_init__(self) -> None:
        self.reads = FeedReads(self.storage)

    def committed(self, result: WriteResult) -> object:
        """Publish a committed write's change rows to open streams; return its answer."""
        if result.changes:
            self.metrics.changes_appended.inc(len(result.changes))
            self.hub.publish(result.changes)
            heads: dict[int, int] = {}
            for change in result.changes:
                heads[change.user_id] = max(change.seq, heads.get(change.user_id, 0))
            self.pokes.publish(heads)  # the other instances' streams of these users
        return result.value


def context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx
