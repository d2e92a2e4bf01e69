"""The app's windows: the main window (conversation list + pane) and conversation pop-outs.
Every window is a view of the one ``Client``; the :class:`WindowManager` owns them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QHideEvent, QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QApplication,
    QMainWindow,
    QMenu,
    QSplitter,
    QStatusBar,
    QWidget,
)

from ui.conversation_list import ConversationListView
from ui.conversation_pane import ConversationPane
from ui.find_bar import FindBar
from ui.gone import COPY_TEXT, Gone
from ui.status import StatusIndicator
from ui.tasks import error_text, spawn
from ui.toasts import ToastArea

if TYPE_CHECKING:
    from .manager import WindowManager


class AppWindow(QMainWindow):
    """What main windows and pop-outs share: status bar, toasts, menus, visibility reports."""

    closed = Signal(object)
    kind = "window"

    def __init__(self, manager: WindowManager) -> None:
        super().__init__()
        self.manager = manager
        self.uid = uuid.uuid4().hex[:12]  # names the window on the app bus (desktop.presence)
        self.active_at = 0  # time.monotonic_ns() when it was last the active window (0: never)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.status_indicator = StatusIndicator()
        self.status_indicator.set_status(manager.client.status)
        manager.bridge.statusChanged.connect(self.status_indicator.set_status)
        self.status_indicator.clicked.connect(lambda: manager.status_clicked(self))
        self.base_title = "Concord"  # shown after the unread total: "(3) Concord"
        manager.bridge.conversationsChanged.connect(self.show_title)
        bar = QStatusBar()
        bar.addPermanentWidget(self.status_indicator)
        self.setStatusBar(bar)
        self.toasts: ToastArea | None = None
        self._said_gone: set[str] = set()  # conversations this window's pane said were deleted

    def _finish(self, central: QWidget) -> None:
        self.setCentralWidget(central)
        self.toasts = ToastArea(central)
        pane = getattr(self, "pane", None)
        self.find_bar = FindBar(pane) if isinstance(pane, ConversationPane) else None  # Ctrl+F
        if isinstance(pane, ConversationPane):
            self.toasts.keep_clear_of(pane.composer)  # a toast never covers what is typed
            pane.conversationGone.connect(self.show_gone)
        self._build_menus()

    def _build_menus(self) -> None:
        m = self.manager
        file = self.menuBar().addMenu("&File")
        self._action(file, "&New conversation…", QKeySequence.StandardKey.New, m.new_conversation)
        self._action(
            file, "New &window", QKeySequence("Ctrl+Shift+N"), lambda: m.open_main_window()
        )
        self._action(file, "&Search…", QKeySequence("Ctrl+K"), lambda: m.quick_switch(self))
        self._action(
            file,
            "&Find in conversation…",
            QKeySequence.StandardKey.Find,
            lambda: self.find_bar.open() if self.find_bar is not None else None,
        )
        self._action(
            file, "&Settings…", QKeySequence.StandardKey.Preferences, lambda: m.open_settings(self)
        )
        file.addSeparator()
        self.sign_out_action: QAction | None = None  # a remote server's only (§2.6)
        if m.client.can_sign_out:
            self.sign_out_action = self._action(file, "Sign &out…", None, lambda: m.sign_out(self))
            file.addSeparator()
        self._action(file, "&Close window", QKeySequence.StandardKey.Close, self.close)
        self._action(file, "&Quit", QKeySequence.StandardKey.Quit, m.quit)
        self.window_menu = self.menuBar().addMenu("&Window")
        self.window_menu.aboutToShow.connect(lambda: m.fill_window_menu(self.window_menu))
        help_ = self.menuBar().addMenu("&Help")
        self._action(help_, "Sync &inspector", None, lambda: m.open_inspector(self))
        self._action(help_, "Copy &debug info", None, self.copy_debug_info)
        self._action(help_, "&About Concord", None, lambda: m.about(self))

    def _action(
        self,
        menu: QMenu,
        text: str,
        shortcut: QKeySequence | QKeySequence.StandardKey | None,
        slot: Callable[[], object],
    ) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(slot)
        menu.addAction(action)
        self.addAction(action)
        return action

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.manager.visibility_changed()

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        self.manager.visibility_changed()

    def closeEvent(self, event: QCloseEvent) -> None:
        pane = getattr(self, "pane", None)
        if isinstance(pane, ConversationPane):
            pane.save_draft()  # what was typed in the last moments is not lost
        self.manager.bridge.statusChanged.disconnect(self.status_indicator.set_status)
        self.manager.bridge.conversationsChanged.disconnect(self.show_title)
        self.closed.emit(self)
        super().closeEvent(event)

    def conversation_id(self) -> str | None:
        """The conversation shown (main windows and pop-outs each say which)."""
        raise NotImplementedError

    def copy_debug_info(self) -> None:
        """Help → Copy debug info (desktop/diagnostics.py): on the clipboard, never a token."""
        from .diagnostics import copy_debug_info

        spawn(
            copy_debug_info(self.manager.client, self.manager.profile),
            lambda exc: self.toast(error_text(exc), "error"),
            lambda _text: self.toast("Debug info copied to the clipboard"),
        )

    def show_title(self, *_changed: object) -> None:
        """The window title with the unread total in front, as every messenger shows it."""
        total = self.manager.list_model.total_unread()
        self.setWindowTitle(f"({total}) {self.base_title}" if total else self.base_title)

    def toast(self, text: str, kind: str = "info") -> None:
        if self.toasts is not None:
            self.toasts.show_toast(text, kind)

    def show_gone(self, gone: Gone) -> None:
        """The conversation shown was deleted elsewhere (ui/gone.py): say so; with unsent text,
        the toast stays until dismissed and offers it again."""
        self._said_gone.add(gone.conversation_id)
        if self.toasts is None:
            return
        text = gone.draft
        action = (COPY_TEXT, lambda: QApplication.clipboard().setText(text)) if text else None
        self.toasts.show_toast(gone.text, timeout_ms=0 if text else 6000, action=action)

    def said_gone(self, conversation_id: str) -> bool:
        """This window already told the user that ``conversation_id`` was deleted (its pane
        showed it): other notices about that delete would repeat it."""
        return conversation_id in self._said_gone


class MainWindow(AppWindow):
    """The list and a pane; the list's selection always follows what the pane shows."""

    kind = "main"

    def __init__(self, manager: WindowManager) -> None:
        super().__init__(manager)
        self.show_title()
        self.list_view = ConversationListView(manager.list_model)
        self.list_view.me = manager.client.me
        self.list_view.setAccessibleName("Conversations")
        self.pane = ConversationPane(manager.client, manager.bridge)
        splitter = QSplitter()
        splitter.addWidget(self.list_view)
        splitter.addWidget(self.pane)
        splitter.setStretchFactor(1, 3)
        splitter.setSizes([260, 640])
        self.splitter = splitter
        self._finish(splitter)
        lv, client = self.list_view, manager.client
        lv.openRequested.connect(self.open_conversation)
        lv.openedWithKeyboard.connect(lambda _cid: self.pane.focus_composer())
        self._unselected: str | None = None  # shown, but not (yet) a row of the list
        self.pane.conversationShown.connect(self._follow_pane)
        self.pane.conversationLeft.connect(lambda _cid: self._rows_removed())
        self.pane.conversationDeleted.connect(lambda _cid: self._rows_removed())
        lv.model().rowsInserted.connect(self._rows_inserted)
        lv.model().rowsRemoved.connect(self._rows_removed)
        lv.openInNewWindowRequested.connect(manager.open_conversation_window)
        lv.renameRequested.connect(
            lambda cid, title: spawn(client.rename_conversation(cid, title), self._error)
        )
        lv.pinRequested.connect(lambda cid, pin: spawn(client.set_pinned(cid, pin), self._error))
        lv.deleteRequested.connect(self._delete)
        self.setTabOrder(self.list_view, self.pane)
        self.resize(960, 640)

    def _error(self, exc: BaseException) -> None:
        self.toast(error_text(exc), "error")

    def conversation_id(self) -> str | None:
        return self.pane.conversation_id()

    def open_conversation(self, cid: str, focus_composer: bool = False) -> None:
        """Show ``cid`` in the pane (and so select it in the list)."""
        self.pane.show_conversation(cid)
        if focus_composer:
            self.pane.focus_composer()

    def _delete(self, cid: str) -> None:
        """Delete from the list: the draft goes with the conversation (and comes back if the
        conversation does: the delete refused, or the user chose "reload" after a conflict)."""
        client = self.manager.client
        self.manager.set_aside(cid, client.take_draft(cid))
        if cid == self.pane.conversation_id():
            self.pane.expect_delete(cid)  # deleted here: not "deleted elsewhere"
        spawn(client.delete_conversation(cid), self._error)

    def _follow_pane(self, cid: str) -> None:
        # A conversation just created is not in the list until the next frame: selected then.
        self._unselected = None if self.list_view.select(cid) else cid

    def _rows_removed(self, *_args: object) -> None:
        """Qt makes a neighbour current (and selected) when the selected row goes: the list
        highlights what the pane shows, or nothing."""
        cid = self.pane.conversation_id()
        if cid is not None and self.list_view.selected_id() == cid:
            return
        if cid is None or not self.list_view.select(cid):
            self.list_view.selectionModel().clear()

    def _rows_inserted(self, *_args: object) -> None:
        cid = self._unselected
        if cid is not None and cid == self.pane.conversation_id() and self.list_view.select(cid):
            self._unselected = None


class ConversationWindow(AppWindow):
    kind = "conversation"

    def __init__(self, manager: WindowManager, conversation_id: str) -> None:
        super().__init__(manager)
        self.pane = ConversationPane(manager.client, manager.bridge)
        self._finish(self.pane)
        self.pane.show_conversation(conversation_id)
        self.pane.conversationDeleted.connect(lambda _cid: self.close())
        view = manager.client.conversation(conversation_id)
        self.base_title = f"{view.title if view else 'Conversation'} — Concord"
        self.show_title()
        manager.bridge.conversationsChanged.connect(self._retitle)
        self.resize(560, 600)

    def conversation_id(self) -> str | None:
        return self.pane.conversation_id()

    def _retitle(self, changed: list, removed: list) -> None:
        for view in changed:
            if view.id == self.pane.conversation_id():
                self.base_title = f"{view.title} — Concord"
                self.show_title()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.manager.bridge.conversationsChanged.disconnect(self._retitle)
        super().closeEvent(event)
