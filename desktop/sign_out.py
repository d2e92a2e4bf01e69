"""File → Sign out… for a remote server's profile (docs/architecture.md §2.6).

:func:`sign_out` runs the dialog (``ui/sign_out_dialog.py``): with unsent actions the user
chooses Send and sign out (a "Sending…" state with Cancel; if the server does not take them
within :data:`SEND_TIMEOUT_S`, it says why and offers Discard or Try again), Discard and sign
out, or Cancel; with none, a plain confirmation. Then this process's windows close, the dialog
says "Signing out…", and ``Client.sign_out`` does the rest (every other process of the profile
closes its windows and quits first, see ``core/sign_out.py``). Afterwards the process starts
over as after a first start: the sign-in dialog for the same server (``WindowManager.signed_out``
tells ``desktop/app.py`` to relaunch).

:func:`follow_sign_outs` is the other side: another process of the profile signs out, so this
one closes every window and quits (its client closes the cache before it leaves the bus).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from PySide6.QtWidgets import QMessageBox, QWidget

from core.sign_out import (
    NotSent,
    SignedOutElsewhere,
    SignOutResult,
    UnsentActions,
    unsent_words,
)
from ui.dialogs import run_dialog
from ui.sign_out_dialog import SignOutDialog

if TYPE_CHECKING:
    from .manager import WindowManager

log = logging.getLogger(__name__)

SEND_TIMEOUT_S = 20.0  # how long "Send and sign out" waits for the server before saying so


def follow_sign_outs(manager: WindowManager) -> None:
    """Close every window and quit when another process of the profile signs out."""

    def let_go() -> None:
        if manager.signing_out:
            return
        log.info("another process signed out of the profile: closing every window")
        manager.signing_out = True
        manager.close_all()
        manager.on_quit()

    manager.client.events.signing_out.connect(let_go)


async def sign_out(manager: WindowManager, parent: QWidget | None) -> SignOutResult | None:
    """The whole File → Sign out…; None when the user cancelled (nothing changed)."""
    client = manager.client
    if not client.can_sign_out or manager.signing_out or manager.sign_out_dialog is not None:
        return None
    url = manager.profile.server_url or ""
    dialog = SignOutDialog(urlsplit(url).netloc or url)  # a window of its own: ours close
    manager.sign_out_dialog = dialog
    try:
        while True:
            discard = await _choose(client, dialog, parent)
            if discard is None:
                return None
            dialog.signing_out()
            manager.signing_out = True
            manager.close_all()  # this process's windows go first; the process stays
            try:
                result: SignOutResult = await client.sign_out(
                    discard=discard, everywhere=dialog.everywhere.isChecked()
                )
                break
            except UnsentActions:  # queued by another process meanwhile: ask again
                manager.signing_out = False
                manager.open_main_window()
            except SignedOutElsewhere:  # another window signed out at the same moment: it goes on
                log.info("another process signs out of the profile: this one quits")
                manager.on_quit()
                return None
            except Exception as exc:  # a bug: the windows are closed, so start over all the same
                log.exception("sign-out failed")
                result = SignOutResult(False, f"signing out failed ({exc})", 0, False, True)
                break
    finally:
        manager.sign_out_dialog = None
        dialog.state = ""
        dialog.done(0)
        dialog.deleteLater()
    await _report(manager, result)
    manager.signed_out = True
    manager.on_quit()  # desktop/app.py starts over: the sign-in dialog
    return result


async def _choose(client: Any, dialog: SignOutDialog, parent: QWidget | None) -> bool | None:
    """Ask; True: discard the unsent actions, False: nothing (left) to discard, None: cancel."""
    entries = client.unsent()
    if entries:
        dialog.ask(unsent_words(entries), len(entries))
    else:
        dialog.confirm()
    if not dialog.isVisible():
        dialog.show()
        if parent is not None:
            dialog.move(parent.geometry().center() - dialog.rect().center())
    dialog.raise_()
    dialog.activateWindow()
    while True:
        choice = await dialog.next_choice()
        if choice == "cancel":
            return None
        if choice in ("sign_out", "discard"):
            return choice == "discard"
        try:  # "send" or "retry"
            if await _send(client, dialog):
                return False
            return None  # cancelled while sending: what is queued is still sent, as always
        except NotSent as exc:
            dialog.failed(str(exc), unsent_words(exc.entries), len(exc.entries))


async def _send(client: Any, dialog: SignOutDialog) -> bool:
    """Wait for the unsent actions to go (True), or for Cancel (False); raises NotSent."""

    def show(*_args: object) -> None:
        left = client.unsent()
        if left and dialog.state == "sending":
            dialog.sending(unsent_words(left), len(left))

    left = client.unsent()
    dialog.sending(unsent_words(left), len(left))
    off = client.events.outbox_changed.connect(show)
    sending = asyncio.ensure_future(client.send_unsent(SEND_TIMEOUT_S))
    cancel = asyncio.ensure_future(dialog.next_choice())
    try:
        await asyncio.wait({sending, cancel}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        off()
        for task in (sending, cancel):
            if not task.done():
                task.cancel()
    if not sending.done() or sending.cancelled():
        return False
    sending.result()  # raises NotSent
    return True


async def _report(manager: WindowManager, result: SignOutResult) -> None:
    """Say what could not be done (a plain sign-out needs no words: the sign-in dialog shows)."""
    problems = []
    if not result.revoked:
        problems.append(
            f"You're signed out on this computer, but {result.problem or 'the server failed'}, "
            "so the session there could not be ended. It ends on its own when it expires."
        )
    if not result.others_closed:
        problems.append(
            "Another Concord window of this account did not close in time, so the messages "
            "stored on this computer were not removed."
        )
    elif not result.cache_removed:
        problems.append("The messages stored on this computer could not be removed.")
    if problems:
        box = QMessageBox(QMessageBox.Icon.Warning, "Signed out", "\n\n".join(problems))
        manager.sign_out_dialog = box
        try:
            await run_dialog(box)
        finally:
            manager.sign_out_dialog = None
