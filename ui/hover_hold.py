"""Rows do not move under the pointer: while the pointer is over a list, its model holds the row
order (:meth:`ui.models.ConversationListModel.hold_order`) and applies what it held once the
pointer leaves. A message arriving in another conversation would otherwise move rows just as the
user clicks one, and the click would open the wrong conversation."""

from __future__ import annotations

from typing import Protocol

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QWidget


class HoldsOrder(Protocol):
    def hold_order(self, on: bool) -> None: ...


class HoldOrderWhileHovered(QObject):
    """Holds ``model``'s order from the pointer entering ``view`` until it leaves, or the view
    hides or is destroyed (so a closed window never keeps a list frozen)."""

    def __init__(self, view: QWidget, model: HoldsOrder) -> None:
        super().__init__(view)  # destroyed with the view
        self.model = model
        self._held = [False]  # shared with the destroyed callback, which outlives ``self``
        view.installEventFilter(self)
        held, model_ = self._held, model
        self.destroyed.connect(lambda *_: _release(held, model_))

    @property
    def holding(self) -> bool:
        return self._held[0]

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind == QEvent.Type.Enter:
            if not self._held[0]:
                self._held[0] = True
                self.model.hold_order(True)
        elif kind in (QEvent.Type.Leave, QEvent.Type.Hide):
            _release(self._held, self.model)
        return False


def _release(held: list[bool], model: HoldsOrder) -> None:
    if held[0]:
        held[0] = False
        model.hold_order(False)
