"""Keep chosen keys of a small preference store equal across windows and processes.

``sync_state(store, name, bus=bus)`` is the desktop cousin of redux-state-sync and
pinia-shared-state: each accepted local write of a synced key is broadcast on the
:class:`BroadcastChannel` ``"sync-state:<name>"`` and applied by every other handle of that name
in the profile, in this process and in the others.

* Every write carries a version ``Meta(clock, writer)``: ``clock`` is a hybrid logical clock
  (``max(last + 1, wall ms)``, raised to every clock seen on the wire) and ``writer`` is unique per
  handle, so ``(clock, writer)`` is a total order that every process computes alike: concurrent
  writes converge, and a write made after seeing another one is always newer than it, whatever
  the wall clocks say.
* Values already in the store when syncing starts are local defaults: they are not broadcast and
  yield to any synced value. Deleting a key is not synced.
* Frames: ``{"type": "update", "entries": {key: {"value", "clock", "writer", "sub"?}}}``.
* Late joiners: each process provides its synced values and versions through the bus state
  handshake (``set_state_provider("sync-state:<name>")``); a new handle fetches them with
  ``request_state`` (again after a bus ``gap``). Versions make that order-independent.
* Values must be small JSON values and **never secrets**: whatever is synced reaches every process
  of the profile. Keep tokens and keyring data out of synced stores, or list their keys in
  ``exclude_keys`` (never sent, never accepted).
* Single-threaded: use the store and the handle from the event loop's thread only.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, cast

import msgspec

from ._channel import BroadcastChannel

if TYPE_CHECKING:
    from ._bus import LocalBus

log = logging.getLogger(__name__)

LOCAL = "local"
REMOTE = "remote"  # origin of the writes sync_state applies; never broadcast again
LWW, FWW, MERGE = "last-write-wins", "first-write-wins", "merge"
JOIN_TIMEOUT_S = 2.0
_handle_ids = itertools.count(1)
# Per bus and channel: this process's open handles, which answer the bus state handshake.
_providers: weakref.WeakKeyDictionary[Any, dict[str, list[SyncHandle]]] = (
    weakref.WeakKeyDictionary()
)

Listener = Callable[[dict[str, Any], str], None]


class Meta(NamedTuple):
    """Version of a synced value; compared as a tuple, ``writer`` breaks clock ties."""

    clock: int
    writer: str


Resolver = Callable[[str, Any, Any, Meta, Meta], Any]


class ObservableStore(Protocol):
    """What ``sync_state`` needs from a store: ``update`` notifies subscribers once with the keys
    whose value changed and passes ``origin`` through (``REMOTE`` for the writes of sync_state)."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def update(self, values: Mapping[str, Any], *, origin: str = LOCAL) -> None: ...

    def subscribe(self, callback: Listener) -> Callable[[], None]: ...


def _copy(value: Any) -> Any:
    return json.loads(json.dumps(value, allow_nan=False))


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _wire(entries: dict[str, _Entry]) -> Any:
    return msgspec.json.decode(msgspec.json.encode(entries))


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class PreferenceStore:
    """A small observable dict of JSON values (theme, font size, sidebar width, ...)."""

    def __init__(self, initial: Mapping[str, Any] | None = None) -> None:
        self._data: dict[str, Any] = _copy(dict(initial or {}))
        self._listeners: list[Listener] = []

    def get(self, key: str, default: Any = None) -> Any:
        return _copy(self._data.get(key, default))

    def set(self, key: str, value: Any, *, origin: str = LOCAL) -> None:
        self.update({key: value}, origin=origin)

    def update(self, values: Mapping[str, Any], *, origin: str = LOCAL) -> None:
        """Store ``values`` (JSON only, else TypeError/ValueError); notify once with what
        really changed."""
        changed = {k: _copy(v) for k, v in values.items() if not _same(self._data.get(k, ...), v)}
        if not changed:
            return
        self._data.update(changed)
        for callback in list(self._listeners):
            try:
                callback(_copy(changed), origin)
            except Exception:
                log.exception("preference store listener failed")

    def snapshot(self) -> dict[str, Any]:
        data: dict[str, Any] = _copy(self._data)
        return data

    def subscribe(self, callback: Listener) -> Callable[[], None]:
        """Call ``callback(changed, origin)`` after each change; returns the unsubscribe."""
        self._listeners.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(callback)

        return unsubscribe


class _Entry(msgspec.Struct, omit_defaults=True):
    """A synced value as stored and sent; ``sub``: merge strategy, version per sub-key."""

    value: Any
    clock: int
    writer: str
    sub: dict[str, Meta] | None = None  # includes removed sub-keys (tombstones)

    @property
    def meta(self) -> Meta:
        return Meta(self.clock, self.writer)

    def subs(self) -> dict[str, Meta]:
        return {**dict.fromkeys(self.value, self.meta), **(self.sub or {})}


class _Frame(msgspec.Struct):
    type: str
    entries: dict[str, _Entry] = {}


def _merge(local: _Entry, remote: _Entry) -> _Entry:
    """Shallow merge of two dicts: each sub-key is its own last-write-wins register."""
    lsub, rsub = local.subs(), remote.subs()
    value: dict[str, Any] = {}
    sub: dict[str, Meta] = {}
    for k in [*lsub, *(k for k in rsub if k not in lsub)]:
        lm, rm = lsub.get(k), rsub.get(k)
        if lm is None or (rm is not None and rm > lm):
            src, sub[k] = remote, cast(Meta, rm)  # not None: k is in lsub or in rsub
        else:
            src, sub[k] = local, lm
        if k in src.value:
            value[k] = src.value[k]
    return _Entry(value, *max(local.meta, remote.meta), sub=sub)


class _Pacer:
    """Turns change notifications into flushes: debounce (wait for quiet), then throttle (a
    leading flush, then at most one per window; a window that saw changes ends with a trailing
    flush and opens the next). Both off: flush on every change."""

    def __init__(
        self, flush: Callable[[], None], throttle: float, debounce: float, call_later: Any
    ) -> None:
        self._flush, self._throttle, self._debounce = flush, throttle, debounce
        self._call_later = call_later
        self._quiet_timer: asyncio.TimerHandle | None = None
        self._window: asyncio.TimerHandle | None = None
        self._dirty = False

    def touch(self) -> None:
        if self._debounce <= 0:
            return self._quiet()
        if self._quiet_timer is not None:
            self._quiet_timer.cancel()
        self._quiet_timer = self._call_later(self._debounce, self._quiet)

    def _quiet(self) -> None:
        self._quiet_timer = None
        if self._window is not None:
            self._dirty = True
            return
        self._flush()
        if self._throttle > 0:
            self._window = self._call_later(self._throttle, self._window_end)

    def _window_end(self) -> None:
        self._window = None
        if self._dirty:
            self._dirty = False
            self._quiet()

    def cancel(self) -> None:
        for timer in (self._quiet_timer, self._window):
            if timer is not None:
                timer.cancel()
        self._quiet_timer = self._window = None
        self._dirty = False


class SyncHandle:
    """A running :func:`sync_state`; ``close()`` or ``async with`` stops it."""

    def __init__(self, *, store: ObservableStore, name: str, bus: LocalBus, **opts: Any) -> None:
        strategy = opts["conflict_strategy"]
        if not callable(strategy) and strategy not in (LWW, FWW, MERGE):
            raise ValueError(f"unknown conflict_strategy {strategy!r}")
        if opts["throttle_ms"] < 0 or opts["debounce_ms"] < 0:
            raise ValueError("throttle_ms and debounce_ms must be >= 0")
        keys = opts["sync_keys"]
        if isinstance(keys, str) or isinstance(opts["exclude_keys"], str):
            raise TypeError("sync_keys and exclude_keys take collections of keys, not a str")
        self._loop = asyncio.get_running_loop()
        self._store, self.name, self._bus, self._strategy = store, name, bus, strategy
        self._keys = None if keys is None else frozenset(keys)
        self._exclude = frozenset(opts["exclude_keys"])
        self._should_sync = opts["should_sync"]
        self._on_remote_update = opts["on_remote_update"]
        self.writer = f"{bus.member_id}/{next(_handle_ids)}"
        self.channel_name = f"sync-state:{name}"
        self._entries: dict[str, _Entry] = {}
        self._pending: dict[str, _Entry] = {}  # own writes not yet broadcast, as written
        self._clock = 0
        self._closed = self._flush_scheduled = False
        self._synced = asyncio.Event()
        self._found = False
        self._handshake: asyncio.Task[None] | None = None
        throttle, debounce = opts["throttle_ms"] / 1000, opts["debounce_ms"] / 1000
        self._pacer = _Pacer(self._flush_soon, throttle, debounce, self._loop.call_later)
        self._channel = BroadcastChannel(self.channel_name, bus=bus)
        self._channel.add_listener("message", self._on_message)
        self._unsubscribe = store.subscribe(self._on_store_change)
        self._off_gap = bus.gap.connect(lambda _epoch, _seq: self._resync())
        self._resync()

    def meta(self, key: str) -> Meta | None:
        """Version of the synced value of ``key``; None if never written since syncing began."""
        entry = self._entries.get(key)
        return entry.meta if entry else None

    async def wait_synced(self) -> bool:
        """Wait for the initial state handshake (or ``close()``); True if another member
        answered and its state was applied, False if nobody provides this name (or nobody
        answered within ``JOIN_TIMEOUT_S``)."""
        await self._synced.wait()
        return self._found

    def close(self) -> None:
        """Send what is still pending, then stop syncing. Idempotent."""
        if self._closed:
            return
        self._pacer.cancel()
        self._flush()
        self._closed = True
        self._synced.set()
        if self._handshake is not None:
            self._handshake.cancel()
        self._unsubscribe()
        self._off_gap()
        self._channel.close()
        group = _providers.get(self._bus, {}).get(self.channel_name, [])
        if self in group:
            group.remove(self)
            if not group and not self._bus.closed:
                self._bus.set_state_provider(self.channel_name, None)

    async def __aenter__(self) -> SyncHandle:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def _resync(self) -> None:
        if not self._closed and (self._handshake is None or self._handshake.done()):
            self._handshake = self._loop.create_task(self._fetch_state())

    async def _fetch_state(self) -> None:
        try:
            got = await self._bus.request_state(self.channel_name, JOIN_TIMEOUT_S)
            states = msgspec.convert(got[0], list[dict[str, _Entry]]) if got else []
        except Exception:
            log.exception("sync_state %r: state handshake failed", self.name)
            states = []
        for entries in states:
            self._apply_remote(entries)
        self._found = self._found or bool(states)
        self._synced.set()
        group = _providers.setdefault(self._bus, {}).setdefault(self.channel_name, [])
        if self not in group:  # provide only now: request_state would ask this process first
            group.append(self)
            self._bus.set_state_provider(
                self.channel_name, lambda: [_wire(h._entries) for h in group]
            )

    def _selected(self, key: str, value: Any) -> bool:
        if key in self._exclude or (self._keys is not None and key not in self._keys):
            return False
        return self._should_sync is None or bool(self._should_sync(key, value))

    def _on_store_change(self, changed: dict[str, Any], origin: str) -> None:
        if origin == REMOTE or self._closed:
            return
        reverts = []
        for key, value in changed.items():
            old = self._entries.get(key)
            if not self._selected(key, value) or (old is not None and _same(old.value, value)):
                continue
            if self._strategy == FWW and old is not None:
                reverts.append(key)  # write-once: undo it once the store's notification is over
                continue
            try:
                entry = self._local_entry(old, _copy(value))
            except (TypeError, ValueError):
                log.warning("sync_state %r: %r is not a JSON value; not synced", self.name, key)
                continue
            self._entries[key] = self._pending[key] = entry
        if reverts:
            self._loop.call_soon(self._revert, reverts)
        if self._pending:
            self._pacer.touch()

    def _local_entry(self, old: _Entry | None, value: Any) -> _Entry:
        self._clock = max(self._clock + 1, _wall_ms())
        meta = Meta(self._clock, self.writer)
        if self._strategy != MERGE or not isinstance(value, dict):
            return _Entry(value, *meta)
        sub = dict.fromkeys(value, meta)
        if old is not None and isinstance(old.value, dict):
            for k, m in old.subs().items():  # unchanged sub-keys and old tombstones keep versions
                gone = k not in value and k not in old.value
                if gone or (k in value and k in old.value and _same(old.value[k], value[k])):
                    sub[k] = m
                elif k not in value:
                    sub[k] = meta  # removed now: a tombstone
        return _Entry(value, *meta, sub=sub)

    def _revert(self, keys: list[str]) -> None:
        if not self._closed:
            self._store.update({k: _copy(self._entries[k].value) for k in keys}, origin=REMOTE)

    def _flush_soon(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._pending and not self._closed and not self._channel.closed:
            entries, self._pending = dict(sorted(self._pending.items())), {}
            self._post({"type": "update", "entries": _wire(entries)})

    def _post(self, message: dict[str, Any]) -> None:
        try:
            self._channel.post_message(message)
        except Exception:
            log.exception("sync_state %r: broadcast failed", self.name)

    def _on_message(self, event: Any) -> None:
        if self._closed:
            return
        try:
            frame = msgspec.convert(event.data, _Frame)
        except msgspec.ValidationError as exc:
            log.warning("sync_state %r: dropped a malformed frame: %s", self.name, exc)
            return
        if frame.type == "update":
            self._apply_remote(frame.entries)

    def _apply_remote(self, entries: dict[str, _Entry]) -> None:
        changed: dict[str, Any] = {}
        for key, remote in entries.items():
            self._clock = max(self._clock, remote.clock)
            if not isinstance(remote.value, dict):
                remote.sub = None
            if not self._selected(key, remote.value):
                continue
            result = self._resolve(key, self._entries.get(key), remote)
            if result is None:
                continue
            self._entries[key] = result
            if not _same(self._store.get(key), result.value):
                changed[key] = _copy(result.value)
        if not changed:
            return
        self._store.update(changed, origin=REMOTE)
        if self._on_remote_update is not None:
            try:
                self._on_remote_update(changed)
            except Exception:
                log.exception("sync_state %r: on_remote_update failed", self.name)

    def _resolve(self, key: str, local: _Entry | None, remote: _Entry) -> _Entry | None:
        """The entry to keep from now on, or None to keep ``local`` unchanged."""
        if local is None:
            return remote
        if remote.meta == local.meta and _same(remote.value, local.value):
            return None
        newer = remote if remote.meta > local.meta else None
        if self._strategy == LWW:
            return newer
        if self._strategy == FWW:
            return remote if remote.meta < local.meta else None
        if self._strategy == MERGE:
            dicts = isinstance(local.value, dict) and isinstance(remote.value, dict)
            return _merge(local, remote) if dicts else newer
        try:
            lm, rm = local.meta, remote.meta
            value = self._strategy(key, _copy(local.value), _copy(remote.value), lm, rm)
            return _Entry(_copy(value), *max(local.meta, remote.meta))
        except Exception:
            log.exception("sync_state %r: conflict resolver failed for %r", self.name, key)
            return None


def sync_state(
    store: ObservableStore,
    name: str,
    *,
    bus: LocalBus,
    sync_keys: Iterable[str] | None = None,
    exclude_keys: Iterable[str] = (),
    throttle_ms: float = 0,
    debounce_ms: float = 0,
    conflict_strategy: str | Resolver = LWW,
    should_sync: Callable[[str, Any], bool] | None = None,
    on_remote_update: Callable[[dict[str, Any]], None] | None = None,
) -> SyncHandle:
    """Keep keys of ``store`` equal in every handle named ``name`` on ``bus``'s profile.

    Call from a running event loop; ``await handle.wait_synced()`` to wait for the current
    state of the other processes. sync_keys: the keys to sync (None: all); exclude_keys: keys
    that never leave this process; should_sync(key, value): a filter for outgoing and incoming
    values. throttle_ms / debounce_ms pace broadcasts (debounce first, then throttle) and coalesce
    to the latest value per key. on_remote_update(changed) runs after remote values were applied.
    conflict_strategy decides, per key, by version ``Meta(clock, writer)``:

    * ``"last-write-wins"``: the highest version wins everywhere.
    * ``"first-write-wins"``: write-once while the group lives: the lowest version ever seen wins,
      and a local write to a key that already has a synced value is undone.
    * ``"merge"``: two dicts merge shallowly, each sub-key by its own last write (a removed sub-key
      stays removed); any other pair of values is last-write-wins.
    * ``resolver(key, local_value, remote_value, local_meta, remote_meta) -> value``: called when
      the two differ; the group converges only if it is commutative, associative and idempotent
      (like ``max``).
    """
    return SyncHandle(**locals())  # exactly the arguments above, by name
