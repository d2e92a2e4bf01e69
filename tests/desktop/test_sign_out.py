"""File → Sign out… (docs/architecture.md §2.6): only for a remote server; with unsent actions
the user chooses Send, Discard or Cancel (nothing goes without that choice); sending shows a
"Sending…" state and says so when the server can't be reached; then the windows close, and the
keyring entry and the cache are gone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import shiboken6
from PySide6.QtWidgets import QMessageBox

import desktop.sign_out
from core.credentials import SERVICE
from core.sign_out import cache_dir
from tests.support.accessibility import problems
from tests.support.keyrings import MemoryKeyring
from tests.support.live_server import PASSWORD, LiveServer
from tests.support.waiting import wait_until
from ui.sign_out_dialog import SignOutDialog


async def setup(live_server: LiveServer, clients, manager_for, unsent: bool):  # type: ignore[no-untyped-def]
    alice = await clients(live_server.url, "alice", "desk")
    await wait_until(lambda: alice.status.state == "live", what="live")
    conv = await alice.create_conversation("Plans")
    await alice.wait_synced()
    if unsent:
        live_server.stop()
        await alice.send_message(conv.id, "still on its way")
    m = manager_for(alice)
    quits: list[bool] = []
    m.on_quit = lambda: quits.append(True)
    window = m.open_main_window()
    return alice, conv, m, window, quits


async def the_dialog(m, state: str) -> SignOutDialog:  # type: ignore[no-untyped-def]
    return await wait_until(
        lambda: (
            m.sign_out_dialog
            if m.sign_out_dialog is not None
            and m.sign_out_dialog.isVisible()
            and m.sign_out_dialog.state == state
            else None
        ),
        timeout=10,
        what=f"the sign-out dialog in state {state}",
    )


def assert_signed_out(alice, ring: MemoryKeyring, m, quits: list[bool]) -> None:  # type: ignore[no-untyped-def]
    assert m.signed_out and quits == [True] and m.windows == []
    assert ring.get_password(SERVICE, alice.config.profile_key) is None
    assert not cache_dir(alice.config).exists()


async def test_only_a_remote_server_offers_sign_out(
    live_server, clients, manager_for, tmp_path: Path
) -> None:
    remote = await clients(live_server.url, "alice", "desk")
    assert manager_for(remote).open_main_window().sign_out_action is not None

    async def minted() -> str:
        raise OSError("no embedded server in this test")

    embedded = await clients(live_server.url, "bob", "desk", refresh_token_source=minted)
    assert not embedded.can_sign_out
    window = manager_for(embedded, "local").open_main_window()
    assert window.sign_out_action is None
    texts = [a.text() for a in window.menuBar().actions()[0].menu().actions()]
    assert "Sign &out…" not in texts


async def test_nothing_unsent_asks_to_confirm_then_signs_out(
    live_server, clients, manager_for, ring
) -> None:
    alice, _conv, m, window, quits = await setup(live_server, clients, manager_for, False)
    assert ring.get_password(SERVICE, alice.config.profile_key)
    window.sign_out_action.trigger()
    dialog = await the_dialog(m, "confirm")
    assert dialog.title.text() == f"Sign out of {live_server.url.split('//')[1]}?"
    assert dialog.sign_out_button.isDefault() and not dialog.discard_button.isVisible()
    assert dialog.everywhere.isVisible() and not dialog.everywhere.isChecked()  # opt in
    dialog.sign_out_button.click()
    await wait_until(lambda: m.signed_out, timeout=15, what="signed out")
    assert_signed_out(alice, ring, m, quits)


async def test_sign_out_on_all_devices_ends_the_other_sessions(
    live_server, clients, manager_for, ring
) -> None:
    alice, _conv, m, window, quits = await setup(live_server, clients, manager_for, False)
    async with httpx.AsyncClient(base_url=live_server.url + "/api/v1") as c:
        phone = await c.post("/auth/token", json={"username": "alice", "password": PASSWORD})
        window.sign_out_action.trigger()
        dialog = await the_dialog(m, "confirm")
        dialog.everywhere.click()
        dialog.sign_out_button.click()
        await wait_until(lambda: m.signed_out, timeout=15, what="signed out")
        assert_signed_out(alice, ring, m, quits)
        r = await c.post("/auth/refresh", json={"refresh_token": phone.json()["refresh_token"]})
        assert r.status_code == 401  # alice's other device has to sign in again


async def test_cancel_changes_nothing(live_server, clients, manager_for, ring) -> None:
    alice, _conv, m, window, quits = await setup(live_server, clients, manager_for, True)
    window.sign_out_action.trigger()
    dialog = await the_dialog(m, "ask")
    assert dialog.title.text() == "1 message hasn't been sent yet"
    assert dialog.send_button.isDefault()  # Enter never discards
    assert problems(dialog) == []  # every control has a name and a role
    dialog.cancel_button.click()
    await wait_until(lambda: m.sign_out_dialog is None, what="the dialog closed")
    assert [e.body.get("body") for e in alice.unsent()] == ["still on its way"]
    assert m.windows == [window] and not m.signed_out and quits == []
    assert ring.get_password(SERVICE, alice.config.profile_key)
    assert alice.status.state != "offline"


async def test_send_says_when_the_server_cannot_be_reached_then_discard(
    live_server, clients, manager_for, ring, monkeypatch
) -> None:
    monkeypatch.setattr(desktop.sign_out, "SEND_TIMEOUT_S", 0.5)
    alice, conv, m, window, quits = await setup(live_server, clients, manager_for, True)
    window.sign_out_action.trigger()
    dialog = await the_dialog(m, "ask")
    dialog.send_button.click()
    assert (await the_dialog(m, "sending")).busy.isVisible()
    await the_dialog(m, "failed")
    assert dialog.title.text() == "1 message couldn't be sent"
    assert "Couldn't reach the server" in dialog.message.text()
    assert dialog.retry_button.isDefault() and dialog.discard_button.isVisible()
    dialog.discard_button.click()
    report = await wait_until(
        lambda: m.sign_out_dialog if isinstance(m.sign_out_dialog, QMessageBox) else None,
        timeout=20,
        what="what could not be done",
    )
    assert "the server could not be reached, so the session there could not be ended" in (
        report.text()
    )
    assert m.windows == [] and not m.signed_out  # signed out here; the app waits for OK
    report.button(QMessageBox.StandardButton.Ok).click()
    await wait_until(lambda: m.signed_out, timeout=5, what="signed out")
    assert_signed_out(alice, ring, m, quits)
    live_server.restart()
    snap = await live_server.snapshot("alice")
    assert snap["messages"].get(conv.id, []) == []  # discarded, as chosen


async def test_send_and_sign_out_waits_until_it_is_sent(
    live_server, clients, manager_for, ring
) -> None:
    alice, conv, m, window, quits = await setup(live_server, clients, manager_for, True)
    window.sign_out_action.trigger()
    dialog = await the_dialog(m, "ask")
    dialog.grab().save("/tmp/signout.png")
    dialog.send_button.click()
    sending = await the_dialog(m, "sending")
    assert "1 message still to send" in sending.message.text()
    sending.grab().save("/tmp/signout-sending.png")
    live_server.restart()
    await wait_until(lambda: m.signed_out, timeout=20, what="signed out")
    assert_signed_out(alice, ring, m, quits)
    snap = await live_server.snapshot("alice")
    assert [x["body"] for x in snap["messages"][conv.id]] == ["still on its way"]


async def test_cancel_while_sending_keeps_it_queued(
    live_server, clients, manager_for, ring
) -> None:
    alice, _conv, m, window, quits = await setup(live_server, clients, manager_for, True)
    window.sign_out_action.trigger()
    (await the_dialog(m, "ask")).send_button.click()
    (await the_dialog(m, "sending")).cancel_button.click()
    await wait_until(lambda: m.sign_out_dialog is None, what="the dialog closed")
    assert len(alice.unsent()) == 1 and not m.signed_out and m.windows == [window]
    assert quits == [] and alice.status.state != "offline"


async def test_every_window_of_the_profile_closes_in_the_other_process(
    live_server, clients, manager_for, ring
) -> None:
    """Two processes of one profile (two clients on one cache and bus, as in the app): signing
    out in one closes the other's windows, and it quits, closing its client, before the cache
    goes."""
    here = await clients(live_server.url, "alice", "desk")
    await wait_until(lambda: here.status.state == "live", what="live")
    there = await clients(live_server.url, "alice", "desk")
    await wait_until(lambda: there.status.role == "follower", what="a second process")
    m_there = manager_for(there, "there")
    there_quit: list[bool] = []

    def quit_there() -> None:  # what desktop/app.py does once done is set
        there_quit.append(True)
        asyncio.get_running_loop().create_task(there.close())

    m_there.on_quit = quit_there
    window_there = m_there.open_main_window()
    m_there.open_conversation_window((await there.create_conversation("Pop-out")).id)
    await there.wait_synced()
    assert len(m_there.windows) == 2
    m = manager_for(here)
    quits: list[bool] = []
    m.on_quit = lambda: quits.append(True)
    m.open_main_window().sign_out_action.trigger()
    (await the_dialog(m, "confirm")).sign_out_button.click()
    await wait_until(lambda: m.signed_out, timeout=20, what="signed out")
    assert m_there.windows == [] and there_quit == [True] and m_there.signing_out
    assert not shiboken6.isValid(window_there)  # closed, and deleted on close
    assert_signed_out(here, ring, m, quits)


def test_the_app_starts_over_as_it_was_started(monkeypatch) -> None:
    import logging
    import os
    import sys

    from desktop import app

    ran: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(os, "execv", lambda exe, argv: ran.append((exe, list(argv))))
    monkeypatch.setattr(logging, "shutdown", lambda: None)
    app.start_over()
    assert ran == [(sys.executable, list(sys.orig_argv))]
