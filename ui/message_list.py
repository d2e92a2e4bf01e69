"""The message history: a virtualized :class:`QListView` over a :class:`MessageListModel`.

Scrolling rules, as in every chat app:

* at the bottom, the view follows new messages (it "sticks");
* scrolled up, it stays put when messages arrive and shows a "New messages ↓" button instead,
  which scrolls down when clicked and hides once the bottom is reached;
* reaching the top asks for older messages (``olderRequested``); when they are prepended
  (:meth:`MessageListView.prepend`), the message that was on screen stays where it was.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence, QPaintEvent, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QListView,
    QPushButton,
    QWidget,
)

from ui.a11y import FocusFrame
from ui.empty_state import Texts, paint_empty_state
from ui.message_delegate import MessageDelegate
from ui.models import MessageListModel

if TYPE_CHECKING:
    from core.model import MessageView

BOTTOM_SLACK = 4  # px: "at the bottom" tolerates a few pixels of rounding
BATCH = 200


class MessageListView(QListView):
    """Signals: ``olderRequested()`` when the user reaches the top (once per arrival there),
    ``reachedBottom()`` when the user scrolls back to the newest message."""

    olderRequested = Signal()
    reachedBottom = Signal()

    def __init__(self, model: MessageListModel | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self._stick = True
        self._older_armed = True
        self.has_older = True
        self._adjusting = False
        self._clamping = False
        self._anchor: tuple[str, int] | None = None
        self._seen: set[str] = set()
        self.setUniformItemSizes(False)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(BATCH)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setWordWrap(True)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAccessibleName("Messages")
        self.focus_frame = FocusFrame(self)  # visible keyboard focus
        self.delegate = MessageDelegate(self)
        self.setItemDelegate(self.delegate)
        self.empty_texts: Texts | None = None  # what to say while there are no messages
        self.banner = QPushButton("New messages ↓", self)
        self.banner.setObjectName("newMessagesBanner")
        self.banner.setAccessibleName("Jump to new messages")
        self.banner.setCursor(Qt.CursorShape.PointingHandCursor)
        self.banner.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        self.banner.hide()
        self.banner.clicked.connect(self.scroll_to_bottom)
        bar = self.verticalScrollBar()
        bar.rangeChanged.connect(self._range_changed)
        bar.valueChanged.connect(self._value_changed)
        self.setModel(model if model is not None else MessageListModel(parent=self))

    # --- public API ------------------------------------------------------------------------------

    def message_model(self) -> MessageListModel:
        model = self.model()
        assert isinstance(model, MessageListModel)
        return model

    # Narrower than QListView.setModel (any model, or None) on purpose: this view only ever
    # shows a MessageListModel, and connects to its signals.
    def setModel(self, model: MessageListModel) -> None:  # type: ignore[override]
        """Show another conversation's messages, starting at the bottom."""
        old, old_selection = self.model(), self.selectionModel()
        if old is not None:
            old.rowsInserted.disconnect(self._rows_inserted)
            old.modelReset.disconnect(self._forget)
            old.dataChanged.disconnect(self._data_changed)
        super().setModel(model)
        if old_selection is not None:
            old_selection.deleteLater()
        model.rowsInserted.connect(self._rows_inserted)
        model.modelReset.connect(self._forget)
        model.dataChanged.connect(self._data_changed)
        self._forget()

    def set_messages(self, messages: list[MessageView]) -> MessageListModel:
        """Replace the content with a fresh model of ``messages`` (owned by this view)."""
        old = self.model()
        model = MessageListModel(messages, parent=self)
        self.setModel(model)
        if old is not None and old.parent() is self:
            old.deleteLater()
        return model

    def add(self, messages: list[MessageView]) -> int:
        """Add or update messages (new ones at the end); returns how many rows were added."""
        return self.message_model().upsert(messages)

    def prepend(self, older: list[MessageView]) -> int:
        """Add older messages above without moving what is on screen."""
        top = self.indexAt(self.viewport().rect().topLeft())
        if top.isValid():
            rect = self.visualRect(top)
            self._anchor = (top.data(MessageListModel.ViewRole).id, rect.top())
        return self.message_model().upsert(older)

    def at_bottom(self) -> bool:
        bar = self.verticalScrollBar()
        return bar.value() >= bar.maximum() - BOTTOM_SLACK

    def banner_visible(self) -> bool:
        return not self.banner.isHidden()

    def scroll_to_bottom(self) -> None:
        self._stick = True
        self._anchor = None
        self.scrollToBottom()
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())
        self._hide_banner()

    # --- scrolling logic -------------------------------------------------------------------------

    def _forget(self) -> None:
        self._stick, self._older_armed, self.has_older, self._anchor = True, True, True, None
        model = self.message_model()
        self._seen = {model.message(r).id for r in range(model.rowCount())}
        self._hide_banner()
        QTimer.singleShot(0, self._follow)

    def _follow(self) -> None:
        if self._stick:
            bar = self.verticalScrollBar()
            self._set_value(bar.maximum())

    def _set_value(self, value: int) -> None:
        self._adjusting = True
        try:
            self.verticalScrollBar().setValue(value)
        finally:
            self._adjusting = False

    def _rows_inserted(self, _parent: QModelIndex, first: int, last: int) -> None:
        model = self.message_model()
        fresh = [model.message(r).id for r in range(first, last + 1)]
        new = [mid for mid in fresh if mid not in self._seen]
        self._seen.update(fresh)
        if not new:
            return  # a pending message confirmed (re-inserted in place): nothing new
        at_end = last == model.rowCount() - 1
        if at_end and not self._stick:
            self._show_banner()

    def _range_changed(self, _lo: int, hi: int) -> None:
        # The value is about to be clamped into the new range: not the user scrolling.
        self._clamping = self.verticalScrollBar().value() > hi
        if self._anchor is not None:
            self._restore_anchor()
        elif self._stick:
            self._set_value(hi)

    def _restore_anchor(self) -> None:
        assert self._anchor is not None
        mid, offset = self._anchor
        model = self.message_model()
        for row in range(min(model.rowCount(), 4 * BATCH)):
            if model.message(row).id == mid:
                rect = self.rectForIndex(model.index(row))
                if rect.isValid():
                    self._set_value(rect.top() - offset)
                return

    def _value_changed(self, value: int) -> None:
        clamping, self._clamping = self._clamping, False
        if self._adjusting or clamping:  # our own scrolling, or a relayout shrinking the range
            return
        self._anchor = None  # the user scrolled: stop pinning the old top message
        self._stick = self.at_bottom()
        if self._stick:
            self._hide_banner()
            self.reachedBottom.emit()
        if value <= self.verticalScrollBar().minimum():
            if self._older_armed and self.has_older and self.model().rowCount():
                self._older_armed = False
                self.olderRequested.emit()
        else:
            self._older_armed = True

    def _show_banner(self) -> None:
        self.banner.adjustSize()
        self._place_banner()
        self.banner.show()
        self.banner.raise_()

    def _hide_banner(self) -> None:
        self.banner.hide()

    def _place_banner(self) -> None:
        vp = self.viewport().geometry()
        size = self.banner.sizeHint()
        self.banner.setGeometry(
            vp.center().x() - size.width() // 2,
            vp.bottom() - size.height() - 8,
            size.width(),
            size.height(),
        )

    def _data_changed(self, top: QModelIndex, bottom: QModelIndex) -> None:
        """A row changed (sent, edited, a new neighbour above it): relayout if its height did;
        QListView keeps the old heights otherwise."""
        for row in range(top.row(), bottom.row() + 1):
            index = self.model().index(row, 0)
            hint = self.delegate.sizeHint(self.delegate.option_for(index), index)
            if self.visualRect(index).height() not in (0, hint.height()):
                self.scheduleDelayedItemsLayout()
                return

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        paint_empty_state(self, self.empty_texts)

    def resizeEvent(self, event: QResizeEvent) -> None:
        stick = self._stick
        super().resizeEvent(event)
        self._place_banner()
        if stick:
            self._stick = True
            QTimer.singleShot(0, self._follow)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.matches(QKeySequence.StandardKey.Copy):
            index = self.currentIndex()
            if index.isValid():
                QApplication.clipboard().setText(index.data(MessageListModel.ViewRole).body)
            event.accept()
            return
        if event.matches(QKeySequence.StandardKey.MoveToEndOfDocument):
            self.scroll_to_bottom()
            event.accept()
            return
        super().keyPressEvent(event)
