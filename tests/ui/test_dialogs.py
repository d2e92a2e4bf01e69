"""Dialogs (conflict, sign-in, settings, delete confirmation) and the Ctrl+K ranking, driven by
clicks and keys; none blocks (``open()``, never ``exec()``), except the one real message box,
which a timer answers."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialog, QMessageBox

from core import protocol as p
from core.bus import PreferenceStore
from core.model import Conflict, ConversationView
from ui.dialogs import (
    ConflictDialog,
    LoginDialog,
    SettingsDialog,
    confirm_delete,
    keyring_explanation,
    run_dialog,
    sends_in_clear,
)
from ui.fuzzy_match import match_score


def server_row(title: str = "Theirs", pinned: bool = True) -> p.Conversation:
    return p.Conversation(
        id="c1",
        title=title,
        pinned=pinned,
        version=3,
        creator="alice",
        members=["alice", "bob"],
        created_at=1,
        updated_at=2,
        message_count=0,
        read_seq=0,
        unread=0,
    )


def conflict(theirs: p.Conversation | None = None) -> Conflict:
    mine = {"title": "Mine", "pinned": False, "base_version": 2, "_origin": "m1"}
    return Conflict("c1", mine, theirs, 7)


@pytest.mark.parametrize(
    ("button", "choice", "code"), [("keep", "keep_mine", 1), ("reload", "reload", 0)]
)
def test_conflict_dialog_shows_both_versions_and_wires_its_buttons(
    qtbot, button: str, choice: str, code: int
) -> None:  # type: ignore[no-untyped-def]
    dialog = ConflictDialog(conflict(server_row()))
    qtbot.addWidget(dialog)
    assert dialog.windowTitle() == "Changed elsewhere"
    assert dialog.rows == {"title": ("Theirs", "Mine"), "pinned": ("Yes", "No")}
    assert "“Theirs” was changed elsewhere" in dialog.message.text()
    results: list[int] = []
    dialog.finished.connect(results.append)
    dialog.open()
    qtbot.waitExposed(dialog)
    target = dialog.keep_button if button == "keep" else dialog.reload_button
    qtbot.mouseClick(target, Qt.MouseButton.LeftButton)
    assert results == [code] and dialog.choice() == choice and not dialog.isVisible()


def test_conflict_dialog_escape_means_reload_and_deleted_cannot_be_kept(qtbot) -> None:  # type: ignore[no-untyped-def]
    dialog = ConflictDialog(conflict(server_row()))
    qtbot.addWidget(dialog)
    dialog.open()
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert dialog.choice() == "reload" and dialog.result() == 0
    gone = ConflictDialog(conflict(None))
    qtbot.addWidget(gone)
    assert not gone.keep_button.isEnabled() and "deleted elsewhere" in gone.message.text()
    assert gone.rows["title"] == ("(deleted)", "Mine")


async def test_run_dialog_awaits_the_answer_without_a_nested_loop(qtbot) -> None:  # type: ignore[no-untyped-def]
    dialog = ConflictDialog(conflict(server_row()))
    qtbot.addWidget(dialog)
    QTimer.singleShot(50, dialog.keep_button.click)
    assert await run_dialog(dialog) == 1 and dialog.choice() == "keep_mine"


def test_login_dialog_collects_credentials_and_explains_the_keyring(qtbot) -> None:  # type: ignore[no-untyped-def]
    problem = (
        "no secure keyring is available (keyring.backends.fail.Keyring); "
        "sign-in will not be remembered after this session"
    )
    dialog = LoginDialog(
        "https://chat.example", "alice", error="Wrong password", keyring_problem=problem
    )
    qtbot.addWidget(dialog)
    dialog.open()
    qtbot.waitExposed(dialog)
    assert dialog.keyring_label.isVisible()
    assert dialog.keyring_label.text() == keyring_explanation(problem)
    assert "cannot store your sign-in securely" in dialog.keyring_label.text()
    assert dialog.error_label.isVisible() and dialog.error_label.text() == "Wrong password"
    assert not dialog.ok_button.isEnabled()
    qtbot.keyClicks(dialog.password, "s3cret")
    assert dialog.ok_button.isEnabled()
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert dialog.result() == QDialog.DialogCode.Accepted.value
    assert dialog.credentials() == ("alice", "s3cret")
    assert "next time" in keyring_explanation("the keyring did not answer in time")


def test_login_dialog_without_keyring_trouble_says_nothing_about_it(qtbot) -> None:  # type: ignore[no-untyped-def]
    dialog = LoginDialog("https://chat.example")
    qtbot.addWidget(dialog)
    dialog.open()
    assert not dialog.keyring_label.isVisible() and not dialog.error_label.isVisible()
    qtbot.keyClicks(dialog.username, " bob ")
    qtbot.keyClicks(dialog.password, "pw")
    assert dialog.credentials() == ("bob", "pw")


def test_login_dialog_asks_twice_before_a_password_goes_out_in_clear(qtbot) -> None:  # type: ignore[no-untyped-def]
    dialog = LoginDialog("http://chat.example:8765", "alice")
    qtbot.addWidget(dialog)
    dialog.open()
    qtbot.waitExposed(dialog)
    assert dialog.insecure_label.isVisible()
    assert "does not use HTTPS" in dialog.insecure_label.text()
    qtbot.keyClicks(dialog.password, "s3cret")
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert dialog.isVisible() and dialog.result() != QDialog.DialogCode.Accepted.value
    assert dialog.ok_button.text() == "Sign in without encryption"
    assert "send it anyway" in dialog.insecure_label.text()
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert dialog.result() == QDialog.DialogCode.Accepted.value
    assert dialog.credentials() == ("alice", "s3cret")


@pytest.mark.parametrize(
    ("url", "warned"),
    [
        ("http://chat.example", True),
        ("HTTP://10.0.0.5:8765/", True),
        ("http://[2001:db8::1]:80", True),
        ("https://chat.example", False),
        ("http://127.0.0.1:8765", False),
        ("http://127.4.5.6", False),
        ("http://[::1]:8765", False),
        ("http://localhost:8765", False),
    ],
)
def test_plain_http_warning_spares_this_machine_and_https(url: str, warned: bool) -> None:
    assert sends_in_clear(url) is warned


def test_login_dialog_over_loopback_signs_in_at_the_first_click(qtbot) -> None:  # type: ignore[no-untyped-def]
    dialog = LoginDialog("http://127.0.0.1:8765", "alice")
    qtbot.addWidget(dialog)
    dialog.open()
    assert not dialog.insecure_label.isVisible()
    qtbot.keyClicks(dialog.password, "pw")
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert dialog.result() == QDialog.DialogCode.Accepted.value


def test_settings_dialog_writes_the_store_live_and_follows_it(qtbot) -> None:  # type: ignore[no-untyped-def]
    store = PreferenceStore({"theme": "system", "notifications": True, "remote_toasts": False})
    writes: list[dict] = []
    store.subscribe(lambda changed, _origin: writes.append(changed))
    dialog = SettingsDialog(store)
    qtbot.addWidget(dialog)
    dialog.open()
    assert dialog.theme.currentData() == "system" and dialog.notifications.isChecked()
    dialog.theme.setCurrentIndex(dialog.theme.findData("dark"))
    assert store.get("theme") == "dark"
    qtbot.mouseClick(dialog.notifications, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(dialog.remote_toasts, Qt.MouseButton.LeftButton)
    assert store.get("notifications") is False and store.get("remote_toasts") is True
    assert writes == [{"theme": "dark"}, {"notifications": False}, {"remote_toasts": True}]
    store.set("theme", "light", origin="remote")  # another window changed it
    assert dialog.theme.currentData() == "light" and len(writes) == 4  # shown, not echoed
    dialog.reject()
    store.set("theme", "dark")
    assert len(writes) == 5  # the closed dialog no longer listens (nor crashes)


def test_confirm_delete_asks_and_defaults_to_no(qtbot) -> None:  # type: ignore[no-untyped-def]
    calls: list[tuple] = []

    def ask(*args):  # type: ignore[no-untyped-def]
        calls.append(args)
        return QMessageBox.StandardButton.Yes

    assert confirm_delete(None, "Team", ask=ask) is True
    _parent, title, text, _buttons, default = calls[0]
    assert title == "Delete conversation" and "“Team”" in text
    assert default == QMessageBox.StandardButton.No
    assert confirm_delete(None, "Team", ask=lambda *a: QMessageBox.StandardButton.No) is False

    def answer_the_real_box() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            box.button(QMessageBox.StandardButton.Yes).click()
        else:
            QTimer.singleShot(20, answer_the_real_box)

    QTimer.singleShot(20, answer_the_real_box)
    assert confirm_delete(None, "Team") is True


def view(cid: str, title: str, pinned: bool = False, at: int = 0) -> ConversationView:
    return ConversationView(
        id=cid,
        title=title,
        pinned=pinned,
        creator="alice",
        members=("alice",),
        version=1,
        created_at=0,
        updated_at=at,
        message_count=0,
        read_seq=0,
        unread=0,
    )


def test_match_score_ranks_prefix_word_substring_fuzzy() -> None:
    assert match_score("", "anything") == 0
    assert match_score("tea", "Team sync") == 0
    assert match_score("SYNC", "Team sync") == 1
    assert match_score("ync", "Team sync") == 2
    assert match_score("tsy", "Team sync") == 3
    assert match_score("xyz", "Team sync") is None
