"""No system keyring: one plain-words notice per profile, ever — an info toast above the
composer, never a red error naming a Python class."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect

from core.model import ErrorInfo
from desktop.keyring_notice import KEYRING
from tests.support.waiting import wait_until
from ui.dialogs import LoginDialog

PROBLEM = (
    "no secure keyring is available (keyring.backends.fail.Keyring); sign-in will not be "
    "remembered after this session"
)


async def test_the_missing_keyring_is_told_once_in_plain_words(
    live_server, clients, manager_for
) -> None:
    client = await clients(live_server.url, "alice", "desk")
    m = manager_for(client)
    client.events.error.emit(ErrorInfo("keyring", PROBLEM))  # before any window: it waits
    await wait_until(lambda: m.keyring_notice.pending, "the notice waiting for a window")
    window = m.open_main_window()
    area = window.toasts
    assert area is not None
    await wait_until(lambda: area.toasts(), "the notice")
    (toast,) = area.toasts()
    assert toast.text() == KEYRING and toast.kind == "info" and toast.timeout_ms > 0
    assert "keyring.backends" not in toast.text()
    composer = window.pane.composer
    toast_rect = QRect(area.mapTo(window, QPoint(0, 0)), area.size())
    composer_rect = QRect(composer.mapTo(window, QPoint(0, 0)), composer.size())
    assert not toast_rect.intersects(composer_rect)
    toast.dismiss()
    await wait_until(lambda: not area.toasts(), "dismissed")
    # Again in this session (a new leader tries the keyring again): nothing more.
    client.events.error.emit(ErrorInfo("keyring", PROBLEM))
    # ... nor after a restart of the app with this profile.
    again = manager_for(client)
    window2 = again.open_main_window()
    client.events.error.emit(ErrorInfo("keyring", PROBLEM))
    client.events.error.emit(ErrorInfo("rejected", "refused: too long"))  # errors still show
    assert window2.toasts is not None
    await wait_until(lambda: window2.toasts.texts() or area.texts(), "the error toast")
    assert KEYRING not in area.texts() + window2.toasts.texts()


def test_the_sign_in_dialog_says_it_in_words_too(qtbot) -> None:  # type: ignore[no-untyped-def]
    dialog = LoginDialog("https://chat.example.org", "alice", keyring_problem=PROBLEM)
    qtbot.addWidget(dialog)
    text = dialog.keyring_label.text()
    assert "will not be remembered" in text and "keyring.backends" not in text
    assert dialog.keyring_label.toolTip() == PROBLEM  # the detail, for whoever looks for it
