"""Bring one message into view in a conversation pane — a search result opened, a Ctrl+F match
— loading older pages (from the cache, else the server) until it is there, then centring and
selecting it."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QAbstractItemView
from shiboken6 import isValid

MAX_PAGE = 500  # messages per page asked for on the way to an old message
MAX_PAGES = 200  # a bound on the way (100,000 messages)


def _row_of(pane: Any, message_id: str) -> int | None:
    model = pane.messages.message_model()
    for row in range(model.rowCount() - 1, -1, -1):
        if model.message(row).id == message_id:
            return row
    return None


def oldest_shown_seq(pane: Any) -> int | None:
    model = pane.messages.message_model()
    for row in range(model.rowCount()):
        seq = model.message(row).seq
        if seq is not None:
            return int(seq)
    return None


def select_message(pane: Any, row: int) -> None:
    """Centre row ``row`` of the pane's messages and make it the current one (highlighted),
    again once the list has laid out what was just added above it."""
    view = pane.messages

    def centre() -> None:
        if not isValid(view) or row >= view.model().rowCount():
            return
        index = view.model().index(row, 0)
        view.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtCenter)
        view.setCurrentIndex(index)

    view.doItemsLayout()
    centre()
    QTimer.singleShot(0, centre)
    QTimer.singleShot(60, centre)


async def reveal(pane: Any, conversation_id: str, seq: int, message_id: str) -> bool:
    """Show ``conversation_id`` in ``pane`` and message ``message_id`` (``seq``) in it; False
    when it cannot be found (deleted since, or the user went elsewhere meanwhile)."""
    if pane.conversation_id() != conversation_id:
        pane.show_conversation(conversation_id)
    for _ in range(MAX_PAGES):
        if not isValid(pane) or pane.conversation_id() != conversation_id:
            return False
        row = _row_of(pane, message_id)
        if row is not None:
            select_message(pane, row)
            return True
        oldest = oldest_shown_seq(pane)
        if oldest is not None and oldest <= seq:
            return False
        limit = MAX_PAGE if oldest is None else max(50, min(MAX_PAGE, oldest - seq + 10))
        older = await pane.client.load_older(conversation_id, limit, oldest)
        if not isValid(pane) or pane.conversation_id() != conversation_id:
            return False
        older = [m for m in older if m.seq is not None]
        if not older:
            return False
        pane.messages.prepend(older)
    return False
