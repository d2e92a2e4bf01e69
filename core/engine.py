"""The leader's side of sync (docs/architecture.md §5): one SSE stream with resume, a polling
fallback, full syncs, token refresh. It writes the cache and reports what it applied and its
status.

States: ``connecting`` → ``live`` (stream open, ``hello`` seen) → ``reconnecting`` (the server
answered, but no stream yet; full-jitter backoff, base 0.5 s, cap 10 s, never below the server's
``retry``). ``unreachable`` whenever neither the stream nor a poll reaches the server (the words
name the host, or say the local server is restarting); ``polling`` only while polls succeed (the
stream has not been live for ``poll_after_s``, or came back as the wrong content type; 5 s → 60 s
while nothing changes). ``sign_in_required`` only after the server refused a fresh token;
``offline`` when sync is off (``CONCORD_SYNC=off``) or stopped. Whatever shows the server is
reachable again (``hello``, a successful poll, a network change) calls ``on_reachable``: the
outbox sends at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from . import protocol as p
from ._aio import wait_event
from ._policy import EngineConfig, SignInRequired, SyncStatus, reconnect_delay
from .credentials import Credentials
from .http import ApiError, NetworkError, ServerApi, TokenAuth, WrongContentType
from .store import Applied, LocalStore
from .wake import watch_for_sleep

# The policy's names are re-exported: callers import them from here.
__all__ = ["EngineConfig", "SignInRequired", "SyncEngine", "SyncStatus", "reconnect_delay"]

log = logging.getLogger(__name__)


class SyncEngine:
    """Keeps the cache in step with the server; its requests are signed by :attr:`tokens`."""

    def __init__(
        self,
        api: ServerApi,
        store: LocalStore,
        credentials: Credentials,
        *,
        username: str,
        on_applied: Callable[[Applied], None],
        on_status: Callable[[SyncStatus], None],
        on_error: Callable[[str, str], None],
        config: EngineConfig | None = None,
    ) -> None:
        self.api = api
        self.store = store
        self.tokens = TokenAuth(api, credentials, username=username)
        self.tokens.sign_in_required.connect(self._show_sign_in_required)
        self.on_applied = on_applied
        self.on_status = on_status
        self.on_error = on_error
        self.config = config or EngineConfig()
        self.status = SyncStatus(
            cursor=store.cursor_id(),
            target=urlsplit(api.base).netloc,
            local_server=self.config.local_server,
        )
        self.live = False
        self.visible = True
        self.hidden_since: float | None = None
        self._not_live_since = time.monotonic()
        self._sync_lock = asyncio.Lock()  # one pull or full sync at a time (single flight)
        self._wake_poll = asyncio.Event()
        self._wake_stream = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stream_task: asyncio.Task[None] | None = None
        self._poll_interval = self.config.poll_min_s
        self.sse_disabled = False  # the server said 204: do not reconnect the stream
        self.live_once = False  # the last connection reached ``hello`` (resets the backoff)
        self._background: set[asyncio.Task[None]] = set()
        self.on_trace: Callable[[str, str], None] = lambda source, text: None
        self.on_reachable: list[Callable[[], None]] = []
        self._unreachable = False  # the last attempt (stream or poll) did not reach the server
        self._last_error: str | None = None
        self._stream_retry_at = 0.0  # monotonic time of the stream's next attempt

    # --- signing in (the client's entry points; :attr:`tokens` does it) --------------------------

    @property
    def password(self) -> str | None:
        """A password the client was given (tests, scripts): signed in with again when there is
        no refresh token."""
        return self.tokens.password

    @password.setter
    def password(self, password: str | None) -> None:
        self.tokens.password = password

    async def sign_in(self, password: str) -> None:
        await self.tokens.sign_in(password)

    def _show_sign_in_required(self) -> None:
        self._set_status("sign_in_required", "Sign-in required")

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self._stream_task = asyncio.create_task(self._stream_loop(), name="concord-sse")
        cfg = self.config
        self._tasks = [
            asyncio.create_task(self._poll_loop(), name="concord-poll"),
            asyncio.create_task(
                watch_for_sleep(self._woke, tick_s=cfg.wake_tick_s, min_gap_s=cfg.wake_gap_s),
                name="concord-wake",
            ),
        ]

    async def stop(self) -> None:
        stream, self._stream_task = self._stream_task, None
        tasks = [*self._tasks, *self._background, *([stream] if stream else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks = []
        self.live = False

    def _set_status(self, state: str, detail: str, next_retry_s: float | None = None) -> None:
        self.status = replace(
            self.status,
            state=state,
            detail=detail,
            next_retry_s=next_retry_s,
            cursor=self.store.cursor_id(),
            last_error=self._last_error,
        )
        self.on_status(self.status)

    def _reached(self) -> None:
        """The server answered: whatever waits for it (the outbox, the stream) goes now."""
        self._unreachable = False
        self._last_error = None
        self._wake_stream.set()  # a poll got through: the stream need not wait out its backoff
        self._tell_reachable()

    def _tell_reachable(self) -> None:
        for callback in list(self.on_reachable):
            callback()

    def _not_reached(self, exc: Exception) -> None:
        self._unreachable = True
        self._last_error = str(exc)

    def _set_unreachable(self) -> None:
        """Show "Offline — can't reach <host>" (or the local server is restarting) and the time
        until the sooner of the stream's next attempt and the next poll."""
        waits = [max(0.0, self._stream_retry_at - time.monotonic())]
        if self.visible and self.tokens.signed_in:
            waits.append(self._poll_interval)
        retry = min(waits)
        if self.config.local_server:
            detail = f"Local server restarting · retrying in {retry:.0f} s"
        else:
            detail = f"Offline — can't reach {self.status.target} · retrying in {retry:.0f} s"
        self._set_status("unreachable", detail, retry)

    # --- applying --------------------------------------------------------------------------------

    def _apply(self, epoch: int, changes: list[p.Change]) -> None:
        done = self.store.apply_changes(epoch, changes)
        if done.changes or done.skipped:  # skipped: unknown kinds, the cursor moved past them
            self.status = replace(self.status, cursor=self.store.cursor_id())
            self.on_applied(done)

    async def full_sync(self) -> None:
        async with self._sync_lock:
            snap = await self.api.snapshot(self.config.snapshot_messages)
            done = self.store.apply_snapshot(snap)
            self.status = replace(self.status, cursor=self.store.cursor_id())
            self.on_applied(done)

    async def pull(self) -> int:
        """Pull ``changes`` since the cursor until caught up; returns how many were applied."""
        async with self._sync_lock:
            applied = 0
            for _ in range(1000):  # bounded: 500 per page
                cursor = self.store.cursor_id()
                if cursor is None:
                    break
                try:
                    page = await self.api.changes(cursor)
                except ApiError as exc:
                    if exc.status == 410:
                        break
                    raise
                before = self.store.cursor_id()
                self._apply(page.epoch, page.changes)
                applied += len(page.changes) if self.store.cursor_id() != before else 0
                if not page.has_more:
                    return applied
            else:
                return applied
        await self.full_sync()  # 410: the cursor is gone
        return applied + 1

    # --- the stream ------------------------------------------------------------------------------

    async def _stream_loop(self) -> None:
        attempt = 0
        server_retry_s = 0.0
        refreshed = False  # a 401 was answered with a refresh; a second 401 means sign in
        while not self.sse_disabled:
            if self.status.state not in ("polling", "unreachable"):  # no flicker per attempt
                self._set_status("connecting" if attempt == 0 else "reconnecting", "Connecting")
            try:
                await self.tokens.ensure_token()
                if self.store.cursor() is None:
                    await self.full_sync()
                retry = await self._consume_stream()
                if retry is not None:
                    server_retry_s = retry
            except SignInRequired:
                self._went_down()
                await self.tokens.wait_signed_in()
                attempt = 0
                continue
            except ApiError as exc:
                self._unreachable, self._last_error = False, str(exc)  # the server answered
                if exc.status == 401 and refreshed:  # refused right after a refresh
                    refreshed = False
                    if not self.tokens.mints:  # the user signs in
                        self._went_down()
                        self.tokens.signed_out()
                        continue
                    # A minted token: the local server is not ready; back off, then refresh.
                elif exc.status == 401:
                    refreshed = True
                    try:
                        await self.tokens.refresh_access()
                        continue
                    except SignInRequired:
                        self._went_down()
                        self.tokens.signed_out()
                        refreshed = False
                        continue
                    except NetworkError as err:  # the refresh did not get through: back off
                        self._not_reached(err)
                    except ApiError as err:
                        self._last_error = str(err)
                elif exc.status == 204:
                    self.sse_disabled = True
                    self._went_down()
                    break
                if exc.retry_after:
                    server_retry_s = max(server_retry_s, exc.retry_after)
                log.info("stream refused: %s", exc)
            except WrongContentType as exc:
                log.warning("event stream unusable (%s); polling", exc)
                self._not_live_since = time.monotonic() - self.config.poll_after_s
                self._wake_poll.set()
            except NetworkError as exc:
                log.info("stream lost: %s", exc)
                if not self.live_once and self.status.state != "polling":
                    self._not_reached(exc)  # never got to ``hello``, and no poll gets through
            self._went_down()
            if self.live_once:  # the backoff starts over once per connection that got live
                attempt = 0
                refreshed = False
                self.live_once = False
            delay = reconnect_delay(
                attempt, self.config.backoff_base_s, self.config.backoff_cap_s, server_retry_s
            )
            attempt += 1
            server_retry_s = 0.0
            self._stream_retry_at = time.monotonic() + delay
            if self._unreachable:
                self._set_unreachable()
            elif self.status.state != "polling":
                self._set_status("reconnecting", f"Reconnecting in {delay:.0f} s", delay)
            self._wake_stream.clear()
            await wait_event(self._wake_stream, delay)

    def _went_down(self) -> None:
        if self.live:
            self._not_live_since = time.monotonic()
        self.live = False
        self._wake_poll.set()

    async def _consume_stream(self) -> float | None:
        """Read one connection until it ends; returns the server's retry hint (s) if any.

        Changes that arrive together (one network read) are applied as one batch: one
        transaction and one notification per affected row, however many events.
        """
        self.live_once = False
        retry: float | None = None
        epoch = 0
        batch: list[p.Change] = []
        loop = asyncio.get_running_loop()
        flush: asyncio.Handle | None = None

        def apply_batch() -> None:
            nonlocal flush
            flush = None
            if batch:
                changes = batch[:]
                batch.clear()
                self._apply(epoch, changes)

        opened_with = self.tokens.access_token
        try:
            events = self.api.events(self.store.cursor_id())
            async with contextlib.aclosing(events):  # closed in this task, even when cancelled
                async for event in events:
                    self.status = replace(self.status, last_event_at=time.time())
                    if event.retry is not None:
                        retry = event.retry / 1000
                    self.on_trace("sse", f"{event.event} {event.id}".strip())
                    if event.event == "change":
                        try:
                            change = p.decode(event.data, p.Change)
                            change_epoch = p.parse_event_id(event.id)[0] if event.id else epoch
                        except p.ProtocolError as exc:
                            self.on_error("protocol", f"bad change event skipped: {exc}")
                            continue
                        if change_epoch != epoch:
                            apply_batch()
                            epoch = change_epoch
                        batch.append(change)
                        if flush is None:
                            flush = loop.call_soon(apply_batch)
                        continue
                    apply_batch()
                    if event.event == "hello":
                        epoch = p.decode(event.data, p.Hello).epoch
                        self.live = self.live_once = True
                        self._poll_interval = self.config.poll_min_s
                        self._reached()
                        self._set_status("live", "Live")
                    elif event.event == "reset":
                        await self.full_sync()
                    elif event.event == "reauth":
                        self._spawn(self.tokens.reauth())
                    elif event.event == "expired":  # the stream's token died: reconnect now
                        if self.tokens.access_token == opened_with:  # reauth did not renew it
                            await self.tokens.reauth()
                        return 0.0
                    elif event.event == "bye":
                        self.live_once = False
                        return retry
        finally:
            if flush is not None:
                flush.cancel()
            apply_batch()
        return retry

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- polling fallback ------------------------------------------------------------------------

    def set_visible(self, visible: bool) -> None:
        if visible and not self.visible:
            hidden_for = time.monotonic() - (self.hidden_since or time.monotonic())
            self.visible = True
            self.hidden_since = None
            if hidden_for > self.config.full_sync_after_hidden_s:
                self._spawn(self._safe(self.full_sync()))
            self._poll_interval = self.config.poll_min_s
            self._wake_poll.set()
            self._wake_stream.set()
        elif not visible and self.visible:
            self.visible = False
            self.hidden_since = time.monotonic()

    def network_changed(self) -> None:
        """Network up, wake from sleep, focus: try now instead of waiting out the backoff
        (the outbox too)."""
        self._poll_interval = self.config.poll_min_s
        self._wake_poll.set()
        self._wake_stream.set()
        self._tell_reachable()

    def reconnect_now(self) -> None:
        """Drop the stream, which may be a dead socket that would only time out after three
        silent heartbeats, and reconnect at once (resuming from the cursor); pull now too."""
        self.network_changed()
        task = self._stream_task
        if task is None or task.done():
            return
        task.cancel()
        self._background.add(task)  # stop() still waits for it to unwind
        task.add_done_callback(self._background.discard)
        self._went_down()
        self._stream_task = asyncio.create_task(self._stream_loop(), name="concord-sse")

    def _woke(self, gap_s: float) -> None:
        log.info("back after %.0f s asleep or stopped: reconnecting", gap_s)
        self.on_trace("engine", f"woke after {gap_s:.0f} s")
        # A long sleep: full sync (docs/architecture.md §5.5).
        if gap_s > self.config.full_sync_after_hidden_s:
            self._spawn(self._safe(self.full_sync()))
        self.reconnect_now()

    async def _safe(self, coro: Awaitable[object]) -> None:
        try:
            await coro
        except (SignInRequired, ApiError, NetworkError) as exc:
            log.info("background sync failed: %s", exc)

    async def _poll_loop(self) -> None:
        cfg = self.config
        while True:
            self._wake_poll.clear()
            down_for = time.monotonic() - self._not_live_since
            if self.live or not self.visible or not self.tokens.signed_in:
                await self._wake_poll.wait()
                continue
            if down_for < cfg.poll_after_s:
                await wait_event(self._wake_poll, cfg.poll_after_s - down_for)
                continue
            polled = False
            try:
                changed = await self.pull()
                polled = True
                self._reached()
                self._poll_interval = (
                    cfg.poll_min_s if changed else min(cfg.poll_max_s, self._poll_interval * 2)
                )
            except SignInRequired:
                continue
            except (ApiError, NetworkError) as exc:
                log.info("poll failed: %s", exc)
                if isinstance(exc, NetworkError):
                    self._not_reached(exc)
                else:
                    self._unreachable, self._last_error = False, str(exc)
                self._poll_interval = min(cfg.poll_max_s, self._poll_interval * 2)
            if self.live:
                continue
            interval = self._poll_interval
            if polled:  # "Polling every N s" only while polls succeed
                self._set_status("polling", f"Polling every {interval:.0f} s", interval)
            elif self._unreachable:
                self._set_unreachable()
            else:  # the server answered with an error
                self._set_status(
                    "reconnecting", f"Server error · retrying in {interval:.0f} s", interval
                )
            await wait_event(self._wake_poll, interval)
