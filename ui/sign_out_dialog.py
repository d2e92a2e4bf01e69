"""File → Sign out…: the one dialog the sign-out goes through (docs/architecture.md §2.6).

It only shows states and reports choices; ``desktop/sign_out.py`` drives it. States:

* ``confirm`` — nothing unsent: [Cancel] [Sign out];
* ``ask`` — "2 messages haven't been sent yet": [Cancel] [Discard and sign out]
  [Send and sign out] (the default: nothing is lost by pressing Enter);
* ``sending`` — "Sending…" with a busy bar: [Cancel];
* ``failed`` — why they could not be sent: [Cancel] [Discard and sign out] [Try again];
* ``signing_out`` — "Signing out…", nothing to press (it ends in seconds, bounded).

``await dialog.next_choice()`` returns ``"send"``, ``"discard"``, ``"sign_out"``, ``"retry"``
or ``"cancel"`` (also Esc or closing the window). Nothing is discarded but by the button that
says so.
"""

from __future__ import annotations

import asyncio

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent, QKeyEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

__all__ = ["SignOutDialog"]

_HAVE_NOT = {True: "hasn't", False: "haven't"}
_IT = {True: "it", False: "them"}


class SignOutDialog(QDialog):
    chosen = Signal(str)

    def __init__(self, host: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.host = host
        self.state = ""
        self.setWindowTitle("Sign out")
        self.setWindowModality(Qt.WindowModality.ApplicationModal)
        self.setMinimumWidth(460)
        self._layout = layout = QVBoxLayout(self)
        layout.setSpacing(10)
        self.title = QLabel()
        font = self.title.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.15)
        self.title.setFont(font)
        self.title.setWordWrap(True)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)  # indeterminate
        self.busy.setTextVisible(False)
        self.busy.setAccessibleName("Working")
        self.everywhere = QCheckBox("Also sign out on all my other devices")
        self.everywhere.setToolTip(
            "Ends every session of this account on the server: other computers and phones "
            "have to sign in again"
        )
        layout.addWidget(self.title)
        layout.addWidget(self.message)
        layout.addWidget(self.everywhere)
        layout.addWidget(self.busy)
        self.buttons = QDialogButtonBox()
        layout.addWidget(self.buttons)
        self.cancel_button = self._button(
            "Cancel", "cancel", QDialogButtonBox.ButtonRole.RejectRole
        )
        self.discard_button = self._button(
            "Discard and sign out", "discard", QDialogButtonBox.ButtonRole.DestructiveRole
        )
        self.send_button = self._button(
            "Send and sign out", "send", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.retry_button = self._button(
            "Try again", "retry", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.sign_out_button = self._button(
            "Sign out", "sign_out", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.discard_button.setToolTip("The unsent messages and changes are lost")
        self._waiters: list[asyncio.Future[str]] = []
        self.chosen.connect(self._answer)

    def _button(self, text: str, choice: str, role: QDialogButtonBox.ButtonRole) -> QPushButton:
        button = QPushButton(text)
        button.setAutoDefault(False)
        button.clicked.connect(lambda: self.chosen.emit(choice))
        self.buttons.addButton(button, role)
        return button

    def _show(self, state: str, title: str, message: str, *shown: QPushButton) -> None:
        self.state = state
        self.title.setText(title)
        self.message.setText(message)
        self.busy.setVisible(state in ("sending", "signing_out"))
        self.everywhere.setVisible(state in ("confirm", "ask", "failed"))
        self.buttons.setVisible(bool(shown))
        for button in self.buttons.buttons():
            button.setVisible(button in shown)
            if isinstance(button, QPushButton):
                button.setDefault(False)
        if shown:
            shown[-1].setDefault(True)  # the safe way forward: Enter never discards
            shown[-1].setFocus()
        self.setAccessibleName(title)
        self.setAccessibleDescription(message)
        self._fit()

    def _fit(self) -> None:
        """As tall as the wrapped text needs at the dialog's width (``adjustSize`` measures
        wrapped labels at a narrower width, and leaves gaps)."""
        layout = self._layout
        layout.activate()
        width = max(self.minimumWidth(), layout.minimumSize().width())
        self.resize(width, layout.totalHeightForWidth(width))

    # --- states ----------------------------------------------------------------------------------

    def confirm(self) -> None:
        self._show(
            "confirm",
            f"Sign out of {self.host}?",
            "You'll need your password to sign in again. The messages stored on this computer "
            "for this account are removed, and every Concord window of it closes.",
            self.cancel_button,
            self.sign_out_button,
        )

    def ask(self, unsent: str, count: int) -> None:
        """``unsent``: "2 messages and 1 change" (core.sign_out.unsent_words), ``count`` of
        them."""
        self._show(
            "ask",
            f"{unsent} {_HAVE_NOT[count == 1]} been sent yet",
            f"Send {_IT[count == 1]} to {self.host} before signing out, or discard "
            f"{_IT[count == 1]}. Discarded messages and changes can't be recovered.",
            self.cancel_button,
            self.discard_button,
            self.send_button,
        )

    def sending(self, unsent: str, count: int) -> None:
        self._show(
            "sending",
            "Sending…",
            f"{unsent} still to send to {self.host}. "
            f"You'll be signed out as soon as the server has {_IT[count == 1]}.",
            self.cancel_button,
        )

    def failed(self, why: str, unsent: str, count: int) -> None:
        self._show(
            "failed",
            f"{unsent} couldn't be sent",
            f"{why}. Try again, or discard {_IT[count == 1]} and sign out anyway.",
            self.cancel_button,
            self.discard_button,
            self.retry_button,
        )

    def signing_out(self) -> None:
        self._show(
            "signing_out",
            "Signing out…",
            f"Ending the session on {self.host} and removing this account's messages from "
            "this computer.",
        )

    # --- choices ---------------------------------------------------------------------------------

    async def next_choice(self) -> str:
        """The next button pressed (``"cancel"`` for Esc or closing the dialog)."""
        waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return await waiter

    def _answer(self, choice: str) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(choice)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            if self.state != "signing_out":
                self.chosen.emit("cancel")
            return
        super().keyPressEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.state == "signing_out":
            event.ignore()  # bounded, and half a sign-out is worse than waiting a moment
            return
        self.chosen.emit("cancel")
        super().closeEvent(event)
