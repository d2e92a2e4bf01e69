"""Keeps a bus either leading (lock + hub) or connected to the leader's hub, across failovers.

Election: whoever takes the OS lock leads; it bumps the fencing epoch and serves the hub. A
follower notices a dead leader by EOF on its socket and at once races for the lock; while no hub
answers it polls (lock, then connect) every 10-20 ms, slower after a while. Nothing here blocks
the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import TYPE_CHECKING

from . import _frames as F
from ._follower import Link
from ._frames import frame
from ._hub import Hub
from ._lock import LeaderLock

if TYPE_CHECKING:
    from ._port import BusPort
    from ._runtime import ScopePaths
    from ._transport import Transport

log = logging.getLogger(__name__)

HOLDOFF_S = 1.0  # after stepping down / a handover to someone else: don't race for the lock
WELCOME_S = 3.0
WATCH_S = 2.0
MAX_OUTBOX = 100_000  # messages kept for resending after a failover (unacked + unsent)
MAX_OUTBOX_BYTES = 64 << 20


def poll_interval(waited: float) -> float:
    """Poll fast right after the hub went away (failover), then back off."""
    if waited < 0.5:
        return 0.01
    return 0.02 if waited < 1.0 else 0.1 if waited < 5.0 else 0.25


class Session:
    """Election loop + outbox of one cross-process bus (the ``Leadership`` its hub asks)."""

    def __init__(self, bus: BusPort, paths: ScopePaths, transport: Transport) -> None:
        self.bus = bus
        self.loop = bus.loop
        self.paths = paths
        self.transport = transport
        self.lock = LeaderLock(paths.lock, paths.epoch)
        self.hub: Hub | None = None
        self.link: Link | None = None
        self.outbox: deque[tuple[int, bytes]] = deque()
        self._outbox_bytes = 0
        self._outbox_warned = False
        self.holdoff_until = 0.0
        self._leading: asyncio.Future[None] | None = None
        self._epoch_floor = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = self.loop.create_task(self._run())

    @property
    def connected(self) -> bool:
        return self.hub is not None or (self.link is not None and self.link.ready)

    # --- outbox -------------------------------------------------------------------------------

    def queue_post(self, mid: int, body: bytes) -> None:
        outbox = self.outbox
        outbox.append((mid, body))
        self._outbox_bytes += len(body)
        if len(outbox) > MAX_OUTBOX or self._outbox_bytes > MAX_OUTBOX_BYTES:
            self._outbox_bytes -= len(outbox.popleft()[1])
            if not self._outbox_warned:
                self._outbox_warned = True
                log.warning("bus: outbox full while the hub is unreachable; dropping oldest")
        link = self.link
        if link is not None and link.ready:
            link.send_body(body)

    def acked(self, mid: int) -> None:
        outbox = self.outbox
        while outbox and outbox[0][0] <= mid:
            self._outbox_bytes -= len(outbox.popleft()[1])
        if not outbox:
            self._outbox_warned = False
            self.bus.notify_changed()

    def resend_outbox(self, link: Link) -> None:
        for _mid, body in self.outbox:
            link.send_body(body)

    def send_control(self, obj: F.ControlToHub) -> bool:
        """Send a control frame to the hub (or hand it to our own hub). False if not connected."""
        hub = self.hub
        if hub is not None:
            obj.epoch = hub.epoch
            if isinstance(obj, F.StateRequest | F.StateReply):
                hub.route(self.bus.member_id, obj)
            elif isinstance(obj, F.Provide):
                hub.members_changed()
            return True
        link = self.link
        if link is None or not link.ready:
            return False
        obj.epoch = link.epoch
        link.send_frame(frame(obj))
        return True

    # --- election loop ------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._elect()
        except Exception:  # a bug here must not take the process (or in-process delivery) down
            log.exception("bus: election loop failed")
            self.bus.degrade("internal error in the election loop")

    async def _elect(self) -> None:
        bus = self.bus
        failing_since: float | None = None
        while not bus.closed:
            now = self.loop.time()
            if now >= self.holdoff_until:
                try:
                    got = self.lock.try_acquire()
                except OSError as exc:
                    bus.degrade(f"lock file unusable: {exc}")
                    return
                if got:
                    failing_since = None
                    if not await self._lead():
                        return
                    continue
            link = await self._connect()
            if link is not None:
                failing_since = None
                await link.done
                self.link = None
                bus.link_lost()
                continue
            failing_since = failing_since if failing_since is not None else now
            await asyncio.sleep(poll_interval(now - failing_since))

    async def _connect(self) -> Link | None:
        link: Link  # the protocol the factory made
        try:
            _t, link = await self.transport.connect(lambda: Link(self))
        except OSError:
            return None
        self.link = link
        try:
            async with asyncio.timeout(WELCOME_S):
                await asyncio.shield(link.welcomed)
        except (TimeoutError, asyncio.CancelledError):
            if not link.welcomed.cancelled() and not link.welcomed.done():
                link.abort()
            if self.bus.closed:
                raise
        if not link.ready:
            link.abort()
            self.link = None
            return None
        return link

    async def _lead(self) -> bool:
        bus, position = self.bus, self.bus.position
        try:
            epoch = self.lock.bump_epoch(floor=max(position.max_epoch, self._epoch_floor))
        except OSError as exc:
            self.lock.release()
            bus.degrade(f"epoch file unusable: {exc}")
            return False
        hub = Hub(bus, self, self.transport, epoch)  # continues from the position's seq
        try:
            await hub.start()
        except OSError as exc:
            self.lock.release()
            bus.degrade(f"cannot listen on {self.transport.address}: {exc}")
            return False
        self.hub = hub
        self._leading = self.loop.create_future()
        position.lead(epoch)  # the epoch continues from the position's seq
        hub.members_changed()  # announces this member as the leader of the new epoch
        bus.notify_changed()
        for _mid, body in self.outbox:
            hub.publish_body(body)
        self.outbox.clear()
        self._outbox_bytes = 0
        watchdog = self.loop.create_task(self._watch(hub))
        try:
            await self._leading
        finally:
            watchdog.cancel()
            self.hub = None
            self._leading = None
            try:
                await hub.close()
            finally:
                self.lock.release()
                bus.lost_leadership()
        return True

    async def _watch(self, hub: Hub) -> None:
        """Every few seconds: are the lock file and the socket still ours? If something removed
        them (a cleaner emptying the runtime directory), lead again on fresh files."""
        while self.hub is hub:
            await asyncio.sleep(WATCH_S)
            if self.hub is hub and not (self.lock.still_ours() and self.transport.still_ours()):
                log.warning("bus: lock file or socket vanished from the runtime dir; re-electing")
                self.stop_leading(holdoff=False)
                return

    def stop_leading(self, *, holdoff: bool) -> None:
        if holdoff:
            self.holdoff_until = self.loop.time() + HOLDOFF_S
        if self._leading is not None and not self._leading.done():
            self._leading.set_result(None)

    def restart_leadership(self, floor: int) -> None:
        """A member knows a newer epoch than ours: lead again above it (no hold-off)."""
        self._epoch_floor = max(self._epoch_floor, floor)
        self.stop_leading(holdoff=False)

    def on_handover(self, successor: str) -> None:
        if successor != self.bus.member_id:
            self.holdoff_until = self.loop.time() + HOLDOFF_S
        else:
            self.holdoff_until = 0.0

    async def close(self, drain_timeout: float = 1.0) -> None:
        """Deliver what is queued (bounded wait), stop leading or disconnect, stop the loop."""
        bus = self.bus
        link = self.link
        if link is not None and link.ready and self.outbox:
            with contextlib.suppress(TimeoutError):
                await bus.wait_for(lambda: not self.outbox or not link.ready, drain_timeout)
        task = self._task
        if self._leading is not None and not self._leading.done():
            self._leading.set_result(None)  # _lead() closes the hub, then the loop sees _closed
            if task is not None:
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.shield(task), 3.0)
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.link is not None:
            self.link.close()
            self.link = None
        self.lock.close()
