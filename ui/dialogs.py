"""The app's dialogs: a conflict ("changed elsewhere"), sign-in, settings, delete confirmation.

All of them are window-modal and work with ``open()`` (no nested event loop); ``await
run_dialog(dialog)`` waits for one from a coroutine. Tests click their buttons.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGridLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ui.paint import danger_color

FIELDS = (("title", "Title"), ("pinned", "Pinned"), ("members", "Members"))
THEMES = (("system", "Same as the system"), ("light", "Light"), ("dark", "Dark"))


async def run_dialog(dialog: QDialog) -> int:
    """Open ``dialog`` (window-modal, no nested event loop) and wait for its result code."""
    done: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def finished(result: int) -> None:
        if not done.done():
            done.set_result(result)

    dialog.finished.connect(finished)
    dialog.open()
    return await done


def _show(key: str, value: Any) -> str:
    if value is None:
        return "—"
    if key == "pinned":
        return "Yes" if value else "No"
    if key == "members":
        return ", ".join(value) if value else "(no one)"
    return str(value)


def _bold(text: str) -> QLabel:
    label = QLabel(text)
    font = label.font()
    font.setBold(True)
    label.setFont(font)
    return label


class ConflictDialog(QDialog):
    """The "changed elsewhere" dialog: the server's version next to ours. After it closes,
    ``choice()`` is ``"reload"`` (keep theirs; the default, and what Esc means) or
    ``"keep_mine"``."""

    def __init__(self, conflict: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.conflict = conflict
        self._choice = "reload"
        self.setWindowTitle("Changed elsewhere")
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)  # read choice() in ``finished``
        self.setMinimumWidth(440)
        theirs, mine = conflict.theirs, conflict.mine
        name = theirs.title if theirs is not None else mine.get("title", "This conversation")
        layout = QVBoxLayout(self)
        if theirs is None:
            intro = (
                f"“{name}” was deleted elsewhere while your change was on its way. "
                "There is nothing to keep your change on."
            )
        else:
            intro = (
                f"“{name}” was changed elsewhere while your change was on its way, and the "
                "other change won. Reload to keep it, or Keep mine to apply yours on top of it."
            )
        self.message = QLabel(intro)
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        grid = QGridLayout()
        grid.addWidget(_bold("Elsewhere (now)"), 0, 1)
        grid.addWidget(_bold("Yours"), 0, 2)
        keys = [(k, label) for k, label in FIELDS if k in mine]
        if mine.get("delete"):
            keys.append(("delete", "Conversation"))
        keys = keys or list(FIELDS)
        self.rows: dict[str, tuple[str, str]] = {}
        for row, (key, label) in enumerate(keys, 1):
            if key == "delete":
                now, yours = ("(deleted)" if theirs is None else "Kept"), "Deleted"
            else:
                now = _show(key, getattr(theirs, key, None)) if theirs is not None else "(deleted)"
                yours = _show(key, mine[key]) if key in mine else "(unchanged)"
            self.rows[key] = (now, yours)
            grid.addWidget(QLabel(f"{label}:"), row, 0)
            for col, text in ((1, now), (2, yours)):
                cell = QLabel(text)
                cell.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
                cell.setWordWrap(True)
                grid.addWidget(cell, row, col)
        layout.addLayout(grid)
        buttons = QDialogButtonBox()
        self.reload_button = QPushButton("Reload")
        self.reload_button.setToolTip("Keep the other change; drop yours")
        self.keep_button = QPushButton("Keep mine")
        self.keep_button.setToolTip("Apply your change again, on top of the other one")
        self.keep_button.setEnabled(theirs is not None)
        buttons.addButton(self.reload_button, QDialogButtonBox.ButtonRole.RejectRole)
        buttons.addButton(self.keep_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.reload_button.clicked.connect(lambda: self._choose("reload"))
        self.keep_button.clicked.connect(lambda: self._choose("keep_mine"))
        self.reload_button.setDefault(True)
        layout.addWidget(buttons)
        self.setAccessibleName("Changed elsewhere")
        self.setAccessibleDescription(intro)

    def _choose(self, choice: str) -> None:
        self._choice = choice
        self.done(1 if choice == "keep_mine" else 0)  # Accepted / Rejected

    def choice(self) -> str:
        return self._choice


def keyring_explanation(problem: str) -> str:
    """Why the password will not be remembered, in words for the user (the keyring backend's
    Python class, which ``problem`` may name in parentheses, is left to the tooltip)."""
    problem = re.sub(r"\s*\([\w.]+\.\w+\)", "", problem).strip().rstrip(".")
    text = f"Concord cannot store your sign-in securely on this computer: {problem}."
    if "remembered" not in problem:
        text += " You will have to sign in again the next time you start Concord."
    return text


class LoginDialog(QDialog):
    """Username and password for ``server_url``; ``credentials()`` → ``(username, password)``.

    ``error``: why the last attempt failed; ``keyring_problem``: a ``Credentials.keyring_error``
    (explained in words: the sign-in will not be remembered)."""

    def __init__(
        self,
        server_url: str,
        username: str | None = None,
        error: str | None = None,
        parent: QWidget | None = None,
        *,
        keyring_problem: str | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Sign in — Concord")
        self.setMinimumWidth(400)
        layout = QVBoxLayout(self)
        intro = QLabel(f"Sign in to {server_url}")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        self.username = QLineEdit(username or "")
        self.username.setAccessibleName("Username")
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setAccessibleName("Password")
        form.addRow("&Username:", self.username)
        form.addRow("&Password:", self.password)
        layout.addLayout(form)
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        # Readable on light and dark windows (ui.theme.ink; tests/ui/test_contrast.py).
        self.error_label.setStyleSheet(f"color: {danger_color(self.palette()).name()};")
        layout.addWidget(self.error_label)
        self.keyring_label = QLabel()
        self.keyring_label.setWordWrap(True)
        self.keyring_label.setVisible(False)
        layout.addWidget(self.keyring_label)
        if keyring_problem:
            self.keyring_label.setText(keyring_explanation(keyring_problem))
            self.keyring_label.setToolTip(keyring_problem)
            self.keyring_label.setVisible(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Sign in")
        # Plain http:// to anything but this machine: the password would cross the network
        # readable. Said in words, and the first "Sign in" click only confirms having read it.
        self.insecure = sends_in_clear(server_url)
        self._insecure_confirmed = not self.insecure
        self.insecure_label = QLabel(
            "This server does not use HTTPS: your password and messages would travel "
            "unencrypted, readable by anyone on the network."
        )
        self.insecure_label.setWordWrap(True)
        self.insecure_label.setStyleSheet(f"color: {danger_color(self.palette()).name()};")
        self.insecure_label.setVisible(self.insecure)
        layout.insertWidget(1, self.insecure_label)
        self.buttons.accepted.connect(self._on_sign_in)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.username.textChanged.connect(self._update)
        self.password.textChanged.connect(self._update)
        self.set_error(error)
        self._update()
        (self.password if username else self.username).setFocus()

    def set_error(self, error: str | None) -> None:
        self.error_label.setText(error or "")
        self.error_label.setVisible(bool(error))
        self.error_label.setAccessibleName(error or "")

    def _update(self) -> None:
        self.ok_button.setEnabled(bool(self.username.text().strip() and self.password.text()))

    def credentials(self) -> tuple[str, str]:
        return self.username.text().strip(), self.password.text()

    def _on_sign_in(self) -> None:
        if self._insecure_confirmed:
            self.accept()
            return
        self._insecure_confirmed = True
        self.insecure_label.setText(
            self.insecure_label.text() + " Click “Sign in without encryption” to send it anyway."
        )
        self.ok_button.setText("Sign in without encryption")


def sends_in_clear(server_url: str) -> bool:
    """True for an ``http://`` URL whose host is not this machine (loopback or ``localhost``)."""
    match = re.match(r"(?i)^http://(\[[^\]]*\]|[^/:?#]*)", server_url.strip())
    if match is None:
        return False
    host = match.group(1).strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a name: it may resolve anywhere


class SettingsDialog(QDialog):
    """Edits ``theme``, ``notifications`` and ``remote_toasts`` of a ``PreferenceStore``; each
    change is written to the store at once, and changes made elsewhere show up here."""

    def __init__(self, store: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.setWindowTitle("Settings — Concord")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.theme = QComboBox()
        for value, label in THEMES:
            self.theme.addItem(label, value)
        self.theme.setAccessibleName("Theme")
        form.addRow("&Theme:", self.theme)
        self.notifications = QCheckBox(
            "Notify me of new messages while Concord is in the background"
        )
        self.remote_toasts = QCheckBox("Show a notice when a conversation changes elsewhere")
        form.addRow(self.notifications)
        form.addRow(self.remote_toasts)
        layout.addLayout(form)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self._load()
        self.theme.currentIndexChanged.connect(
            lambda _i: self.store.set("theme", self.theme.currentData())
        )
        self.notifications.toggled.connect(lambda on: self.store.set("notifications", on))
        self.remote_toasts.toggled.connect(lambda on: self.store.set("remote_toasts", on))
        off = store.subscribe(lambda _changed, _origin: self._load())
        self.finished.connect(lambda _r: off())
        self.destroyed.connect(lambda _o=None: off())

    def _load(self) -> None:
        """Show the store's values without writing them back."""
        widgets = (self.theme, self.notifications, self.remote_toasts)
        for w in widgets:
            w.blockSignals(True)
        try:
            index = self.theme.findData(self.store.get("theme", "system"))
            self.theme.setCurrentIndex(max(0, index))
            self.notifications.setChecked(bool(self.store.get("notifications", True)))
            self.remote_toasts.setChecked(bool(self.store.get("remote_toasts", False)))
        finally:
            for w in widgets:
                w.blockSignals(False)


Ask = Callable[..., Any]


def confirm_delete(parent: QWidget | None, title: str, ask: Ask | None = None) -> bool:
    """Ask before deleting conversation ``title``; ``ask`` replaces ``QMessageBox.question``."""
    yes, no = QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No
    answer = (ask or QMessageBox.question)(
        parent,
        "Delete conversation",
        f"Delete “{title}”? It disappears from every window and device; this cannot be undone.",
        yes | no,
        no,
    )
    return answer == yes
