"""The status indicator and the toasts: words for every sync state (with an injected clock), the
countdown, a real client's status across a server stop and restart, and stacked toasts."""

from __future__ import annotations

from dataclasses import replace

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QLabel, QSplitter, QWidget
from shiboken6 import Shiboken

from core.engine import SyncStatus
from tests.support.waiting import wait_until
from ui.bridge import ClientBridge
from ui.icons import STATE_COLORS, STATE_SHAPES, state_pixmap
from ui.status import StatusIndicator, age_text, status_text, status_tooltip
from ui.toasts import ToastArea

T0 = 1_700_000_000.0


@pytest.mark.parametrize(
    ("status", "text"),
    [
        (SyncStatus("live", "Live"), "Live"),
        (SyncStatus("connecting", "Connecting"), "Connecting…"),
        (
            SyncStatus("reconnecting", "Reconnecting in 6 s", next_retry_s=6.0),
            "Reconnecting in 6 s",
        ),
        (SyncStatus("reconnecting", "Connecting"), "Reconnecting…"),
        (SyncStatus("polling", "Polling every 20 s", next_retry_s=20.0), "Polling every 20 s"),
        (SyncStatus("polling", "Polling every 5 s", next_retry_s=4.6), "Polling every 5 s"),
        (
            SyncStatus("unreachable", "x", next_retry_s=4.0, target="chat.example:443"),
            "Offline — can't reach chat.example:443 · retrying in 4 s",
        ),
        (
            SyncStatus("unreachable", "x", next_retry_s=2.0, local_server=True),
            "Local server restarting · retrying in 2 s",
        ),
        (SyncStatus("unreachable", "x", target="h:1"), "Offline — can't reach h:1 · retrying now"),
        (SyncStatus("offline", "Sync off"), "Offline"),
        (SyncStatus("sign_in_required", "Sign-in required"), "Sign-in required"),
        (SyncStatus("live", "Live", role="follower"), "Live"),
    ],
)
def test_words_for_every_state(status: SyncStatus, text: str) -> None:
    assert status_text(status, T0) == text
    assert status_text(status, T0, since=T0) == text


def test_the_reconnect_delay_counts_down_and_never_goes_negative() -> None:
    s = SyncStatus("reconnecting", "Reconnecting in 6 s", next_retry_s=6.0)
    shown = [status_text(s, T0 + dt, since=T0) for dt in (0, 0.5, 1, 2.2, 5, 5.9, 6, 7, 600)]
    assert shown == [
        "Reconnecting in 6 s",
        "Reconnecting in 6 s",
        "Reconnecting in 5 s",
        "Reconnecting in 4 s",
        "Reconnecting in 1 s",
        "Reconnecting in 1 s",
        "Reconnecting…",
        "Reconnecting…",
        "Reconnecting…",
    ]
    assert status_text(s, T0 - 30, since=T0) == "Reconnecting in 6 s"  # the clock went back
    tiny = replace(s, next_retry_s=0.04)
    assert status_text(tiny, T0, since=T0) == "Reconnecting in 1 s"


def test_tooltip_tells_role_cursor_and_event_age() -> None:
    lead = SyncStatus("live", "Live", "leader", cursor="1:42", last_event_at=T0 - 3)
    tip = status_tooltip(lead, T0).splitlines()
    assert tip[0] == "Live" and "Role: leader" in tip[1]
    assert "Cursor: 1:42" in tip and "Last event 3 s ago" in tip
    follower = replace(lead, role="follower", last_event_at=None, cursor=None)
    tip = status_tooltip(follower, T0).splitlines()
    assert tip[0] == "Live (via another window)" and "Role: follower" in tip[1]
    assert "Cursor: none yet" in tip and "No event from the server yet" in tip
    waiting = SyncStatus("connecting", "Waiting for the leader", "follower")
    assert "Waiting for the leader" in status_tooltip(waiting, T0)
    ages = [age_text(x) for x in (-2, 3.4, 150, 7300, 200_000)]
    assert ages == ["0 s", "3 s", "2 min", "2 h", "2 d"]


def test_every_state_has_its_own_color_and_shape(qapp) -> None:  # type: ignore[no-untyped-def]
    states = list(STATE_SHAPES)
    assert len(set(STATE_SHAPES.values())) == len(states)  # distinguishable without color
    assert len({STATE_COLORS[s] for s in states}) >= 5
    images: list[bytes] = []
    for state in states:
        image = state_pixmap(state, 16).toImage().convertToFormat(QImage.Format.Format_ARGB32)
        images.append(bytes(image.constBits()))
    assert len(set(images)) == len(states)


def test_indicator_counts_down_with_an_injected_clock(qtbot) -> None:  # type: ignore[no-untyped-def]
    now = [T0]
    ind = StatusIndicator(clock=lambda: now[0])
    qtbot.addWidget(ind)
    ind.set_status(SyncStatus("reconnecting", "Reconnecting in 6 s", next_retry_s=6.0))
    assert ind.text() == "Reconnecting in 6 s" and ind.timer.isActive()
    assert ind.accessibleName() == "Sync status: Reconnecting in 6 s"
    now[0] += 2
    ind.refresh()
    assert ind.text() == "Reconnecting in 4 s"
    now[0] += 60
    ind.refresh()
    assert ind.text() == "Reconnecting…"
    ind.set_status(SyncStatus("live", "Live", role="follower", cursor="2:7"))
    assert ind.text() == "Live" and not ind.timer.isActive()
    assert ind.toolTip().startswith("Live (via another window)")
    assert "2:7" in ind.accessibleDescription()
    ind.set_status(replace(ind.status(), last_event_at=now[0] - 3))
    assert ind.timer.isActive() and "Last event 3 s ago" in ind.toolTip()
    now[0] += 10
    ind.refresh()
    assert "Last event 13 s ago" in ind.toolTip()


def test_indicator_ticks_each_second_on_its_own(qtbot) -> None:  # type: ignore[no-untyped-def]
    ind = StatusIndicator()
    qtbot.addWidget(ind)
    clicks: list[int] = []
    ind.clicked.connect(lambda: clicks.append(1))
    ind.set_status(SyncStatus("reconnecting", "Reconnecting in 2 s", next_retry_s=2.0))
    assert ind.text() == "Reconnecting in 2 s"
    qtbot.waitUntil(lambda: ind.text() == "Reconnecting in 1 s", timeout=2500)
    qtbot.waitUntil(lambda: ind.text() == "Reconnecting…", timeout=2500)
    qtbot.mouseClick(ind, Qt.MouseButton.LeftButton)
    assert clicks == [1]


async def test_indicator_follows_a_real_client_through_a_server_restart(
    live_server, clients, qtbot
) -> None:  # type: ignore[no-untyped-def]
    client = await clients(live_server.url, "alice", "d1")
    bridge = ClientBridge(client)
    ind = StatusIndicator()
    qtbot.addWidget(ind)
    ind.set_status(client.status)
    bridge.statusChanged.connect(ind.set_status)
    seen: list[str] = []
    bridge.statusChanged.connect(lambda _s: seen.append(ind.text()))
    try:
        await wait_until(lambda: ind.text() == "Live", what="Live")
        assert "Role: leader" in ind.toolTip()
        live_server.stop()
        host = live_server.url.removeprefix("http://")
        await wait_until(
            lambda: ind.text().startswith(f"Offline — can't reach {host} · retrying in"),
            what="offline, naming the host",
        )
        assert "Last error:" in ind.toolTip()
        offline_from = next(i for i, t in enumerate(seen) if t.startswith("Offline"))
        assert not any(t.startswith("Polling every") for t in seen[offline_from:])
        live_server.restart()
        await wait_until(lambda: ind.text() == "Live", timeout=15, what="Live again")
        assert "Last event" in ind.toolTip()
    finally:
        bridge.close()


def test_toasts_stack_auto_dismiss_and_click_away(qtbot) -> None:  # type: ignore[no-untyped-def]
    host = QWidget()
    qtbot.addWidget(host)
    host.resize(600, 400)
    field = QLabel("focus stays here", host)
    field.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    host.show()
    qtbot.waitExposed(host)
    field.setFocus()
    area = ToastArea(host)
    quick = area.show_toast("saved", timeout_ms=150)
    area.show_toast("kept", timeout_ms=0)
    assert area.texts() == ["saved", "kept"] and area.isVisible()
    qtbot.waitUntil(lambda: area.texts() == ["kept"], timeout=3000)
    qtbot.waitUntil(lambda: not Shiboken.isValid(quick), timeout=2000)  # deleted, not hidden
    for i in range(5):
        area.show_toast(f"n{i}", "error" if i == 4 else "info", timeout_ms=0)
    assert area.texts() == ["n1", "n2", "n3", "n4"]  # at most 4; the oldest went first
    assert area.toasts()[-1].kind == "error"
    font_height = area.fontMetrics().height()
    assert all(t.isVisible() and t.label.height() >= font_height for t in area.toasts())
    assert area.height() >= 4 * font_height  # sized to hold all of them, none squeezed
    assert field.hasFocus()  # never steals focus
    geo = area.geometry()
    assert geo.right() <= host.width() and geo.bottom() <= host.height()
    assert geo.right() > host.width() - 40 and geo.bottom() > host.height() - 40
    host.resize(900, 700)
    qtbot.waitUntil(lambda: area.geometry().bottom() > 700 - 40, timeout=2000)
    assert area.geometry().right() > 900 - 40
    first = area.toasts()[0]
    qtbot.mouseClick(first, Qt.MouseButton.LeftButton, pos=QPoint(5, 5))
    assert area.texts() == ["n2", "n3", "n4"]
    area.clear()
    assert area.texts() == [] and not area.isVisible()


def test_toasts_over_a_splitter_do_not_become_a_pane(qtbot) -> None:  # type: ignore[no-untyped-def]
    host = QWidget()
    qtbot.addWidget(host)
    splitter = QSplitter(host)
    splitter.addWidget(QLabel("left"))
    splitter.addWidget(QLabel("right"))
    splitter.setGeometry(10, 20, 500, 300)
    host.resize(520, 340)
    host.show()
    area = ToastArea(splitter)
    area.show_toast("hello", timeout_ms=0)
    assert splitter.count() == 2 and area.parentWidget() is host
    geo = area.geometry()
    assert geo.right() <= 10 + 500 and geo.bottom() <= 20 + 300 and geo.bottom() > 20 + 300 - 40
