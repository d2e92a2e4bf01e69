"""Remote servers: the app asks for the password when it has no stored sign-in, says why an
attempt failed, asks again when the server signs it out, and a click on the status re-opens it."""

from __future__ import annotations

import asyncio

from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from tests.support.live_server import PASSWORD, LiveServer, add_users
from tests.support.waiting import wait_until
from ui.dialogs import LoginDialog
from ui.inspector import SyncInspector


async def open_dialog(manager) -> LoginDialog:  # type: ignore[no-untyped-def]
    return await wait_until(
        lambda: (
            manager.login_dialog
            if manager.login_dialog and manager.login_dialog.isVisible()
            else None
        ),
        what="the sign-in dialog",
    )


def answer(dialog: LoginDialog, password: str) -> None:
    dialog.password.setText(password)
    dialog.ok_button.click()


async def test_wrong_then_right_password_signs_in(live_server, clients, manager_for) -> None:
    alice = await clients(live_server.url, "alice", "desk", password=None)
    await wait_until(lambda: alice.status.state == "sign_in_required", what="sign-in required")
    m = manager_for(alice)
    signing_in = asyncio.ensure_future(m.sign_in())  # what the app does at start
    first = await open_dialog(m)
    assert first.username.text() == "alice" and first.username.isReadOnly()
    assert not first.error_label.isVisible()
    answer(first, "not-the-password")
    second = await wait_until(
        lambda: m.login_dialog if m.login_dialog is not first and m.login_dialog else None,
        what="the dialog again",
    )
    assert "wrong username or password" in second.error_label.text()
    answer(second, PASSWORD)
    assert await asyncio.wait_for(signing_in, 15) is True
    await wait_until(lambda: alice.status.state == "live", timeout=15, what="live")
    window = m.open_main_window()
    await wait_until(lambda: window.status_indicator.text() == "Live", what="status says Live")


async def test_status_click_asks_to_sign_in_or_opens_the_inspector(
    live_server, clients, manager_for
) -> None:
    alice = await clients(live_server.url, "alice", "desk", password=None)
    await wait_until(lambda: alice.status.state == "sign_in_required", what="sign-in required")
    m = manager_for(alice)
    window = m.open_main_window()
    indicator = window.status_indicator
    await wait_until(lambda: indicator.text() == "Sign-in required", what="status says so")
    QTest.mouseClick(indicator, Qt.MouseButton.LeftButton, pos=QPoint(5, 5))
    dialog = await open_dialog(m)
    dialog.reject()  # cancel: nothing changes, no second dialog
    await wait_until(lambda: m.login_dialog is None, what="dialog gone")
    assert alice.status.state == "sign_in_required"
    QTest.mouseClick(indicator, Qt.MouseButton.LeftButton, pos=QPoint(5, 5))
    answer(await open_dialog(m), PASSWORD)
    await wait_until(lambda: indicator.text() == "Live", timeout=15, what="live")
    QTest.mouseClick(indicator, Qt.MouseButton.LeftButton, pos=QPoint(5, 5))
    inspector = await wait_until(lambda: m._inspector, what="the sync inspector")
    assert isinstance(inspector, SyncInspector) and inspector.isVisible()
    inspector.close()


async def test_signed_out_while_running_asks_again(tmp_path, clients, manager_for) -> None:
    data = tmp_path / "srv"
    data.mkdir()
    add_users(data)
    server = LiveServer(data, heartbeat_s=0.5, access_ttl_s=1.0, reauth_lead_s=0.2)
    try:
        alice = await clients(server.url, "alice", "desk", password=None)
        await wait_until(lambda: alice.status.state == "sign_in_required", what="sign-in required")
        m = manager_for(alice)
        window = m.open_main_window()
        signing_in = asyncio.ensure_future(m.sign_in())
        answer(await open_dialog(m), PASSWORD)
        assert await asyncio.wait_for(signing_in, 15) is True
        await wait_until(lambda: alice.status.state == "live", timeout=15, what="live")
        server.revoke_sessions()  # the access token expires within a second; refresh is refused
        await wait_until(
            lambda: alice.status.state == "sign_in_required", timeout=15, what="signed out"
        )
        answer(await open_dialog(m), PASSWORD)  # asked again without anyone clicking
        await wait_until(lambda: alice.status.state == "live", timeout=15, what="live again")
        await wait_until(lambda: window.status_indicator.text() == "Live", what="status says Live")
    finally:
        server.stop()
