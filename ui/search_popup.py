"""Ctrl+K: search conversations *and* messages, as in Slack or Telegram (docs/architecture.md
§5.11).

Each keystroke searches the cache at once (``Client.search``: offline, a few ms): matching
conversations first (titles by word prefix, then fuzzy matches (`ui/fuzzy_match.py`)), then
messages, newest first, the matched words highlighted. When typing pauses the server is asked
too, and what it finds beyond the cache is added under "More on the server" (with "Load more"
for its next page). With nothing typed the list is every conversation, as the list orders them.

Up/Down and Page Up/Down move over the hits (headers are skipped), Enter opens one —
``conversationChosen(id)``, or ``messageChosen(conversation id, seq, message id)`` — and
closes; Esc closes.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QModelIndex, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QAbstractItemView, QDialog, QLabel, QLineEdit, QListView, QVBoxLayout

from core.search_results import ConversationHit, MessageHit, SearchResults, match_ranges
from ui.a11y import name_clear_button
from ui.fuzzy_match import match_score
from ui.search_model import ResultDelegate, ResultsModel, Row, conversation_row, message_row
from ui.tasks import spawn

SERVER_DELAY_MS = 350  # typing paused this long: ask the server too
MESSAGE_HITS = 50
EMPTY_LIST = 100  # conversations listed before anything is typed


class SearchPopup(QDialog):
    """``SearchPopup(client, parent)``; connect the signals and call ``open()``."""

    conversationChosen = Signal(str)
    messageChosen = Signal(str, int, str)

    def __init__(self, client: Any, parent: Any = None) -> None:
        super().__init__(parent)
        self.client = client
        self.setWindowTitle("Search")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.edit = QLineEdit(self)
        self.edit.setPlaceholderText("Search conversations and messages")
        self.edit.setAccessibleName("Search conversations and messages")
        self.edit.setClearButtonEnabled(True)
        name_clear_button(self.edit, "Clear search")
        self.model = ResultsModel(self)
        self.list = QListView(self)
        self.list.setModel(self.model)
        self.list.setItemDelegate(ResultDelegate(self.list))
        self.list.setAccessibleName("Search results")
        self.list.setUniformItemSizes(False)
        self.list.setWordWrap(True)
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # typing stays in the field
        self.list.activated.connect(self._choose_index)
        self.list.clicked.connect(self._choose_index)
        self.status = QLabel(self)
        self.status.setAccessibleName("Search status")
        layout = QVBoxLayout(self)
        layout.addWidget(self.edit)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.status)
        self._local = SearchResults("")
        self._server: list[MessageHit] = []
        self._server_state = ""  # "", "searching", "error: …"
        self._next_before: int | None = None
        self._generation = 0  # answers for an older query are dropped
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(SERVER_DELAY_MS)
        self._timer.timeout.connect(lambda: self._ask_server(None))
        self.edit.textChanged.connect(self._typed)
        self.edit.installEventFilter(self)
        self.resize(560, 480)
        self._typed("")
        self.edit.setFocus()

    # --- what tests and the app read ------------------------------------------------------------

    def rows(self) -> list[Row]:
        return self.model.rows()

    def current_row(self) -> Row | None:
        index = self.list.currentIndex()
        return self.model.row(index.row()) if index.isValid() else None

    # --- searching -------------------------------------------------------------------------------

    def _typed(self, text: str) -> None:
        self._generation += 1
        self._server, self._server_state, self._next_before = [], "", None
        self._timer.stop()
        if text.strip():
            self._local = self.client.search(text, MESSAGE_HITS)
            if self._local.terms:
                self._timer.start()
        else:
            self._local = SearchResults(text)
        self._show(keep=None)

    def _ask_server(self, before: int | None) -> None:
        query, generation = self.edit.text(), self._generation
        self._server_state = "searching"
        self._show(keep=self.current_row())

        async def run() -> Any:
            try:
                return await self.client.search_server(query, before)
            except Exception as exc:  # offline, signed out, the server refused: said in the list
                return exc

        def done(result: Any) -> None:
            if generation != self._generation:
                return
            if isinstance(result, Exception):
                self._server_state = f"error: {result}"
            else:
                self._server_state = ""
                self._server += result.messages
                self._next_before = result.next_before
            self._show(keep=self.current_row())

        spawn(run(), None, done)

    def _show(self, keep: Row | None) -> None:
        rows = self._rows()
        self.model.set_rows(rows)
        hits = sum(r.kind in ("conversation", "message") for r in rows)
        if self._server_state == "searching":
            self.status.setText("Searching the server…")
        elif not hits and self.edit.text().strip():
            self.status.setText("Nothing found")
        else:
            self.status.setText(f"{hits} results" if self.edit.text().strip() else "")
        target = next((i for i, r in enumerate(rows) if keep is not None and r == keep), None)
        self._select(target if target is not None else self._first(0, 1))

    def _rows(self) -> list[Row]:
        text = self.edit.text()
        if not text.strip():
            views = self.client.conversations()[:EMPTY_LIST]
            return [Row("header", "Conversations")] + [
                conversation_row(ConversationHit(v)) for v in views
            ]
        local = self._local
        convs = [conversation_row(h) for h in local.conversations]
        shown = {r.conversation_id for r in convs}
        fuzzy = sorted(
            (
                (score, i, v)
                for i, v in enumerate(self.client.conversations())
                if v.id not in shown and (score := match_score(text, v.title)) is not None
            ),
            key=lambda t: (t[0], t[1]),
        )
        terms = list(local.terms)
        convs += [
            conversation_row(ConversationHit(v, match_ranges(v.title, terms))) for *_, v in fuzzy
        ]
        rows: list[Row] = []
        if convs:
            rows += [Row("header", "Conversations"), *convs[:20]]
        if local.messages:
            rows += [Row("header", "Messages"), *(message_row(h) for h in local.messages)]
        known = {h.message.id for h in local.messages}
        extra = [h for h in self._server if h.message.id not in known]
        if extra or self._server_state:
            rows.append(Row("header", "More on the server"))
            rows += [message_row(h) for h in extra]
            if self._server_state == "searching":
                rows.append(Row("status", "Searching the server…"))
            elif self._server_state.startswith("error: "):
                rows.append(Row("status", "The server cannot be searched right now"))
        if self._next_before is not None and not self._server_state:
            rows.append(Row("more", "Load more from the server"))
        return rows

    # --- moving and choosing ---------------------------------------------------------------------

    def _first(self, start: int, step: int) -> int | None:
        """The nearest selectable row from ``start`` in direction ``step`` (None: none)."""
        rows = self.model.rows()
        i = start
        while 0 <= i < len(rows):
            if rows[i].selectable:
                return i
            i += step
        return None

    def _select(self, row: int | None) -> None:
        if row is None:
            self.list.setCurrentIndex(QModelIndex())
            return
        index = self.model.index(row, 0)
        self.list.setCurrentIndex(index)
        self.list.scrollTo(index)

    def _move(self, delta: int) -> None:
        current = self.list.currentIndex().row()
        count = self.model.rowCount()
        if count == 0:
            return
        start = max(0, min(count - 1, (current if current >= 0 else -1) + delta))
        step = 1 if delta > 0 else -1
        found = self._first(start, step)
        if found is None:
            found = self._first(start, -step)
        if found is not None:
            self._select(found)

    def _choose_index(self, index: QModelIndex) -> None:
        if index.isValid() and self.model.row(index.row()).selectable:
            self.list.setCurrentIndex(index)
            self._choose()

    def _choose(self) -> None:
        row = self.current_row()
        if row is None:
            return
        if row.kind == "more":
            self._ask_server(self._next_before)
            return
        if row.kind == "message" and row.message is not None:
            m = row.message.message
            self.messageChosen.emit(m.conversation_id, m.seq or 0, m.id)
        elif row.conversation_id is not None:
            self.conversationChosen.emit(row.conversation_id)
        self.accept()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            watched is self.edit
            and isinstance(event, QKeyEvent)
            and event.type() == QEvent.Type.KeyPress
        ):
            key = event.key()
            page = max(1, self.list.viewport().height() // max(1, self.list.sizeHintForRow(0)))
            moves: dict[int, int] = {
                Qt.Key.Key_Up: -1,
                Qt.Key.Key_Down: 1,
                Qt.Key.Key_PageUp: -page,
                Qt.Key.Key_PageDown: page,
            }
            if key in moves:
                self._move(moves[key])
                return True
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self._choose()
                return True
            if key == Qt.Key.Key_Escape:
                self.reject()
                return True
        return super().eventFilter(watched, event)
