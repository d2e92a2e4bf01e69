"""Drafts: what is typed in a composer belongs to the conversation it is shown for.

A :class:`DraftKeeper` ties one composer to the ``Client``'s per-conversation drafts (kept in the
shared cache, so they survive a crash and reach every window of the device). It saves the text
at most :data:`SAVE_MS` after a keystroke, and at once when the composer switches conversation,
loses focus or its window closes; it loads a conversation's draft when that conversation is
shown. A draft changed elsewhere (another window, another process) is written into the composer
unless the composer has focus and holds text not yet saved: the user typing there always wins.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QApplication, QPlainTextEdit

log = logging.getLogger(__name__)

# A keystroke reaches the cache and the bus at most this long after it was typed (a throttle,
# not a debounce: steady typing is mirrored too), so other windows show it within ~300 ms.
SAVE_MS = 200


def deleted_notice(title: str) -> str:
    """What the user is told when a conversation with a draft disappears."""
    return f"“{title}” was deleted elsewhere — your draft was copied to the clipboard"


def keep_on_clipboard(title: str, text: str) -> str:
    """Copy a rescued draft to the clipboard; returns the notice to show."""
    QApplication.clipboard().setText(text)
    return deleted_notice(title or "A conversation")


class DraftKeeper(QObject):
    """Keeps ``composer``'s text as the draft of the conversation set with :meth:`show`."""

    def __init__(self, composer: QPlainTextEdit, client: Any, bridge: Any) -> None:
        super().__init__(composer)
        self.composer, self.client = composer, client
        self._cid: str | None = None
        self._known = ""  # the draft as last loaded, saved or received
        self._loading = False
        self._aside = ""  # the draft of a conversation being deleted from here
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(SAVE_MS)
        self._timer.timeout.connect(self.save)
        composer.textChanged.connect(self._edited)
        composer.installEventFilter(self)
        bridge.draftChanged.connect(self._on_draft)
        bridge.draftRestored.connect(self._on_restored)

    def conversation_id(self) -> str | None:
        return self._cid

    def show(self, conversation_id: str | None) -> None:
        """Switch to a conversation (None: none): the old one's text is saved first."""
        if conversation_id == self._cid:
            return
        self.save()
        self._cid = conversation_id
        self._load(self._read(conversation_id) if conversation_id else "")

    def save(self) -> None:
        """Store the composer's text as the draft now (nothing happens when it is unchanged)."""
        self._timer.stop()
        cid, text = self._cid, self.composer.toPlainText()
        if cid is None or text == self._known:
            return
        self._known = text
        try:
            self.client.set_draft(cid, text)
        except Exception:  # a full disk: the text stays in the composer
            log.exception("could not save the draft")

    def take(self) -> str:
        """The conversation is gone: remove its draft and return the text (what is typed here,
        else what the cache held); the composer is left empty and bound to nothing."""
        cid, typed = self._cid, self.composer.toPlainText()
        self._timer.stop()
        self._cid = None
        cached = ""
        if cid is not None:
            try:
                cached = self.client.take_draft(cid)
            except Exception:
                log.exception("could not take the draft")
        self._load("")
        return typed if typed.strip() else cached

    def set_aside(self) -> None:
        """The user deletes the conversation: its draft goes with it, kept here in case the
        delete is refused (:meth:`put_back`)."""
        self._aside = self.take()

    def put_back(self, conversation_id: str) -> None:
        """The delete was refused: the draft set aside is the conversation's again."""
        text, self._aside = self._aside, ""
        if text.strip() and not self._read(conversation_id):
            self.client.set_draft(conversation_id, text)

    # --- internals -------------------------------------------------------------------------------

    def _read(self, conversation_id: str) -> str:
        try:
            return str(self.client.draft(conversation_id))
        except Exception:
            log.exception("could not read the draft")
            return ""

    def _load(self, text: str) -> None:
        self._timer.stop()
        self._known = text
        if self.composer.toPlainText() == text:
            return
        self._loading = True
        try:
            self.composer.setPlainText(text)
            self.composer.moveCursor(QTextCursor.MoveOperation.End)
        finally:
            self._loading = False

    def _edited(self) -> None:
        if not self._loading and self._cid is not None and not self._timer.isActive():
            self._timer.start()

    def _on_draft(self, conversation_id: str, text: str) -> None:
        if conversation_id != self._cid or text == self._known:
            return
        if self.composer.hasFocus() and self.composer.toPlainText() != self._known:
            return  # being typed in: the user's own text is saved (and mirrored) shortly
        self._load(text)

    def _on_restored(self, conversation_id: str, text: str) -> None:
        """A refused send's text was put back while the user types here: append it (the user's
        cursor stays put) so that the next save keeps both."""
        typed = self.composer.toPlainText()
        if conversation_id != self._cid or text in typed:
            return
        if self.composer.hasFocus() and typed != self._known:
            cursor = QTextCursor(self.composer.document())
            cursor.movePosition(QTextCursor.MoveOperation.End)
            cursor.insertText(("\n\n" if typed.strip() else "") + text)
            self.save()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.composer and event.type() == QEvent.Type.FocusOut:
            self.save()
        return False
