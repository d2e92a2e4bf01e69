"""Local event bus with WHATWG ``BroadcastChannel`` semantics across the processes of a scope.

Quick start::

    from core.bus import LocalBus, BroadcastChannel

    bus = await LocalBus.open(scope="<profile key>")      # joins the scope; leads if nobody does
    ch = BroadcastChannel("conversations", bus=bus)
    ch.on_message = lambda ev: print(ev.data, ev.seq, ev.sender)
    ch.post_message({"id": "c1", "title": "Renamed"})   # reaches every *other* "conversations"
    ch.close()                                           # channel of the scope, in any process
    await bus.close()

Channels (DESIGN.md §3): a post reaches every other open channel object of the same name in the
same scope — in this process and in all the scope's other processes — never the posting object.
Receivers are those open when the message is posted (for other processes: when it reaches them);
one closed before delivery gets nothing; one created later does not get it. Delivery is
asynchronous (never inside ``post_message``) and FIFO per sender; in this process one loop
callback delivers a whole batch. ``add_listener("message" | "messageerror", cb)`` returns an
unsubscribe callable; ``on_message`` / ``on_messageerror`` are handler shorthands.
``MessageEvent``: ``data`` (the receiver's own copy), ``seq`` (hub sequence number; ``None`` for
a follower's own message delivered in its own process, and in in-process mode), ``sender``
(member id), ``target``, ``type``, ``error`` (``messageerror`` only).

Data must be a plain JSON value whose JSON round trip is equal to it: dict with str keys, list,
str, int, finite float, bool, None. Anything else — tuple, set, bytes, NaN/inf, non-str keys,
objects — raises ``DataCloneError`` at the caller, as does an encoding over ~1 MiB.
``post_message`` after ``close()`` raises ``InvalidStateError`` (checked first). A frame a
receiver cannot decode or validate fires ``messageerror`` on it only (when its channel name can
be recovered; otherwise it is dropped and logged at DEBUG).

Across processes: the leader (holder of an OS lock in the scope's 0700 runtime directory) hosts
a hub on a 0600 Unix socket (Linux: peer uid checked with ``SO_PEERCRED``); followers connect.
The hub stamps every message with a global sequence number and the leader's fencing epoch
(incremented at each acquisition; frames of an older epoch are refused). When the leader dies
its followers see EOF, race for the lock and reconnect by themselves; messages posted meanwhile
are queued (bounded) and delivered after reconnection exactly once.

Bus API: ``member_id``, ``is_leader``, ``epoch``, ``leader_id``, ``members()``,
``cross_process`` (False when the runtime directory or socket is unusable: in-process delivery
only, one warning logged; each such process then considers itself leader, epoch 0),
``await step_down()``, ``await force_leader()``, ``await close()``, and bus events via
``bus.add_listener(event, cb)``:

* ``"leader_changed"`` — ``cb(epoch, leader_member_id)``;
* ``"members_changed"`` — ``cb(member_ids)``;
* ``"gap"`` — ``cb(epoch, seq)``: this member may have missed messages before ``seq`` (a
  failover lost the dead leader's last frames, the replay buffer was exceeded, or a sender's
  queue overflowed). Re-run the state handshake.

State handshake for late joiners::

    bus.set_state_provider("prefs", lambda: store.snapshot())   # a JSON value (or awaitable)
    got = await bus.request_state("prefs", timeout=2.0)         # -> (snapshot, seq) | None
    if got:
        snapshot, seq = got   # reflects every message with ev.seq <= seq; apply it, then skip
                              # queued messages with ev.seq <= seq

The leader answers if it provides the name (else this process, else any other provider). When
``request_state`` returns, every message from another process with ``seq <= seq`` has already
been delivered. Providers should be idempotent-friendly: a provider's own unsequenced messages
may be reflected in the snapshot and still arrive afterwards.
"""

from ._bus import LocalBus
from ._channel import BroadcastChannel, MessageEvent
from ._errors import DataCloneError, InvalidStateError
from .sync_state import sync_state

__all__ = [
    "BroadcastChannel",
    "DataCloneError",
    "InvalidStateError",
    "LocalBus",
    "MessageEvent",
    "sync_state",
]
