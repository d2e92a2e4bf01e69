"""Local event bus with WHATWG ``BroadcastChannel`` semantics across the processes of a scope.

Quick start::

    from core.bus import LocalBus, BroadcastChannel

    bus = await LocalBus.open(scope="<profile key>")      # joins the scope; leads if nobody does
    ch = BroadcastChannel("conversations", bus=bus)
    ch.on_message = lambda ev: print(ev.data, ev.seq, ev.sender)
    ch.post_message({"id": "c1", "title": "Renamed"})   # reaches every *other* "conversations"
    ch.close()                                           # channel of the scope, in any process
    await bus.close()

Channels (docs/architecture.md §3): a post reaches every other open channel object of the same
name in the same scope — in this process and in all the scope's other processes — never the
posting object.
Receivers are those open when the message is posted: one closed before delivery gets nothing;
one created after the post does not get it, in whichever process (each frame carries its post
time on ``time.monotonic_ns()``, a clock shared by the processes of a host; a frame more than
10 s old by that clock goes to every open receiver, so a foreign clock cannot hide it). Delivery is
asynchronous (never inside ``post_message``) and FIFO per sender; other processes' messages
arrive in the hub's one total order (``seq``), a process's own messages reach its other channels
directly. In a process one loop callback delivers a whole batch (to all its receivers).
``add_listener("message" | "messageerror", cb)`` returns an unsubscribe callable;
``on_message`` / ``on_messageerror`` are handler shorthands. ``MessageEvent``: ``data`` (the
receiver's own copy, decoded on first access), ``seq`` (hub sequence number; ``None`` for a
follower's own message delivered in its own process, and in in-process mode), ``sender``
(member id), ``target``, ``type``, ``error`` (``messageerror`` only).

Data must be a plain JSON value whose JSON round trip is equal to it: dict with str keys, list,
str, int, finite float, bool, None. Anything else — tuple, set, bytes, NaN/inf, non-str keys,
objects — raises ``DataCloneError`` at the caller, as does an encoding over ~1 MiB.
``post_message`` after ``close()`` raises ``InvalidStateError`` (checked first). A frame a
receiver cannot decode or validate fires ``messageerror`` on it only (when its channel name can
be recovered; otherwise it is dropped and logged at DEBUG).

Across processes: the leader (holder of an OS lock in the scope's 0700 runtime directory,
released by the kernel when it dies) hosts a hub on a 0600 Unix socket (Linux: peer uid checked
with ``SO_PEERCRED``; a named pipe on Windows, untested); followers connect. Frames are a 4-byte
length + JSON (version ``v``, at most 1 MiB), never pickle. The hub stamps every message with a
global sequence number and the leader's fencing epoch (incremented at each acquisition and
persisted next to the lock; frames of another epoch are refused). The hub acknowledges a
follower's messages once they are in every member's socket; unacknowledged ones are resent after
a reconnection and receivers drop duplicates (per sender id), so a message posted by a live
process while the hub changes is delivered exactly once. When the leader dies, followers see EOF
at once, race for the lock (polling every 10 ms while no hub answers) and reconnect by
themselves; the new hub replays what they missed of its epoch. The queue of a follower's
unacknowledged messages is bounded (100,000 messages / 64 MiB; overflow drops the oldest, which
receivers see as a gap).

Bus API: ``LocalBus.open(scope, runtime_dir=None)`` (``LocalBus(scope)`` inside a running loop
gives an in-process-only bus), ``member_id``, ``is_leader``, ``epoch``, ``leader_id``,
``members()`` (leader first), ``cross_process`` (False when the runtime directory or socket is
unusable: in-process delivery only, one warning logged; each such process then considers itself
leader, epoch 0), ``await step_down()`` (another member takes over; a no-op when alone),
``await force_leader()`` (the leader hands over to this member; True once it leads),
``await close()``, and bus events as typed signals (``core.signal.Signal``):
``off = bus.gap.connect(cb)`` returns the disconnect callable; callbacks run from the loop,
and the election done inside ``open()`` precedes any listener:

* ``bus.leader_changed`` — ``cb(epoch, leader_member_id)``;
* ``bus.members_changed`` — ``cb(member_ids)``;
* ``bus.gap`` — ``cb(epoch, seq)``: this member may have missed messages before ``seq`` (it was
  not where the new leader was when a failover happened, the hub's replay buffer did not reach
  back far enough, a frame could not be decoded, or a sender's queue overflowed). Re-run the
  state handshake.

State handshake for late joiners::

    bus.set_state_provider("prefs", lambda: store.snapshot())   # a JSON value (or awaitable)
    got = await bus.request_state("prefs", timeout=2.0)         # -> (snapshot, seq) | None
    if got:
        snapshot, seq = got   # reflects every message with ev.seq <= seq; apply it, then skip
                              # queued messages with ev.seq <= seq

The leader answers if it provides the name (else this process, else any other provider). The
provider runs after the deliveries already queued in its process, so the snapshot reflects every
message with ``seq <= seq``; when ``request_state`` returns, every such message from another
process has already been delivered to the requester too (later ones follow as usual). The
snapshot travels as one frame (at most ~1 MiB). Apply snapshots idempotently: a follower
provider's own messages may be in the snapshot and still arrive afterwards with a higher seq.
"""

from ._bus import LocalBus
from ._channel import BroadcastChannel, MessageEvent
from ._errors import DataCloneError, InvalidStateError
from ._sync_state import PreferenceStore, SyncHandle, sync_state

__all__ = [
    "BroadcastChannel",
    "DataCloneError",
    "InvalidStateError",
    "LocalBus",
    "MessageEvent",
    "PreferenceStore",
    "SyncHandle",
    "sync_state",
]
