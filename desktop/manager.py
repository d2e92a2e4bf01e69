"""Owns every window of this process: opening, the Window menu, layout save/restore, visibility
reports to the client, and where conflicts, errors and toasts are shown."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRect, Qt, QTimer, Signal
from PySide6.QtWidgets import QApplication, QInputDialog, QMenu, QMessageBox, QWidget

from desktop.profile import Profile
from ui.bridge import ClientBridge
from ui.dialogs import ConflictDialog, LoginDialog, SettingsDialog, run_dialog
from ui.drafts import keep_on_clipboard
from ui.inspector import SyncInspector
from ui.jump import reveal
from ui.models import ConversationListModel
from ui.search_popup import SearchPopup
from ui.tasks import error_text, spawn

from . import layout, startup
from .keyring_notice import KeyringNotice
from .sign_out import follow_sign_outs, sign_out
from .windows import AppWindow, ConversationWindow, MainWindow

log = logging.getLogger(__name__)
RESCUE_MS = 500  # a pane showing a conversation that is gone takes its draft first


class WindowManager(QObject):
    windowsChanged = Signal()  # a window of this process opened or closed

    def __init__(
        self,
        app: QApplication,
        client: Any,
        bridge: ClientBridge,
        prefs: Any,
        profile: Profile,
        on_quit: Callable[[], None],
    ) -> None:
        super().__init__()
        self.app, self.client, self.bridge, self.prefs = app, client, bridge, prefs
        self.profile = profile
        self.on_quit = on_quit
        self.list_model = ConversationListModel(client.conversations())
        bridge.conversationsChanged.connect(self.list_model.apply)
        bridge.conflict.connect(self._on_conflict)
        bridge.error.connect(self._on_error)
        bridge.statusChanged.connect(self._on_status)
        # Drafts of conversations that are gone (see "drafts" below).
        self._titles = {v.id: v.title for v in client.conversations()}
        self._set_aside: dict[str, str] = {}  # drafts of conversations being deleted from here
        bridge.conversationsChanged.connect(self._track_drafts)
        bridge.draftChanged.connect(self._draft_changed)
        for cid in client.drafts():
            self._rescue_later(cid)
        self.windows: list[AppWindow] = []
        self._inspector: SyncInspector | None = None
        self.keyring_notice = KeyringNotice(profile.config_dir, self.active_window)
        # This process's layout file: the first process's, until app.py says it is separate.
        self.layout = layout.LayoutStore(profile.config_dir)
        self._closing_all = False
        self._signing_in = False
        self.login_dialog: LoginDialog | None = None  # the open sign-in dialog, if any
        self._asking: dict[str, list[Any]] = {}  # open conflict dialogs: what each answers
        # Signing out (desktop/sign_out.py): the windows close but the process stays until done;
        # ``signed_out`` tells desktop/app.py to start over with the sign-in dialog.
        self.signing_out = self.signed_out = False
        self.sign_out_dialog: Any = None  # the open File → Sign out… dialog (or its report)
        follow_sign_outs(self)

    # --- windows ---------------------------------------------------------------------------------

    def _track(self, window: AppWindow) -> AppWindow:
        self.windows.append(window)
        window.closed.connect(self._closed)
        log.info("window opened: %s (%d open)", window.kind, len(self.windows))
        self.windowsChanged.emit()
        return window

    def _closed(self, window: AppWindow) -> None:
        if not self._closing_all:
            self.save_layout(closing=window)
        if window in self.windows:
            self.windows.remove(window)
        self.visibility_changed()
        self.windowsChanged.emit()
        if not self.windows and not self.signing_out:
            self.on_quit()

    def open_main_window(
        self,
        conversation_id: str | None = None,
        launch: dict[str, str] | None = None,
        geometry: QRect | None = None,
    ) -> MainWindow:
        """A new main window, shown and focused (``launch``: the startup notification of the
        launch that asked for it, see :mod:`desktop.startup`), at ``geometry`` if given."""
        window = MainWindow(self)
        self._track(window)
        if geometry is not None:
            window.setGeometry(geometry)
        if conversation_id:
            window.open_conversation(conversation_id)
        startup.activate(window, launch or {})
        return window

    def open_conversation_window(self, conversation_id: str) -> ConversationWindow:
        for w in self.windows:
            if isinstance(w, ConversationWindow) and w.conversation_id() == conversation_id:
                w.raise_()
                w.activateWindow()
                return w
        window = ConversationWindow(self, conversation_id)
        self._track(window)
        window.show()
        return window

    def open_from_request(
        self, conversation_id: str | None, launch: dict[str, str] | None = None
    ) -> None:
        """Another launch asked for a window (over the bus), with its startup notification."""
        if conversation_id:
            startup.activate(self.open_conversation_window(conversation_id), launch or {})
        else:
            self.open_main_window(launch=launch)

    def active_window(self) -> AppWindow | None:
        active = QApplication.activeWindow()
        for w in reversed(self.windows):
            if w is active:
                return w
        return self.windows[-1] if self.windows else None

    def any_focused(self) -> bool:
        return any(w.isActiveWindow() for w in self.windows)

    def visibility_changed(self) -> None:
        visible = any(w.isVisible() and not w.isMinimized() for w in self.windows)
        self.client.set_visible(visible)

    def fill_window_menu(self, menu: QMenu) -> None:
        menu.clear()
        for i, w in enumerate(self.windows, 1):
            action = menu.addAction(f"&{i} {w.windowTitle()}")
            action.setCheckable(True)
            action.setChecked(w.isActiveWindow())
            action.triggered.connect(
                lambda _=False, w=w: (w.showNormal(), w.raise_(), w.activateWindow())
            )

    # --- commands --------------------------------------------------------------------------------

    def new_conversation(self) -> None:
        parent = self.active_window()
        title, ok = QInputDialog.getText(parent, "New conversation", "Title:")
        if ok and title.strip():
            spawn(self._create(title, parent), self._error_in(parent))

    async def _create(self, title: str, parent: AppWindow | None) -> None:
        """Open the new conversation (selected in the list) with the keyboard in its composer."""
        view = await self.client.create_conversation(title)
        if isinstance(parent, MainWindow):
            parent.open_conversation(view.id, focus_composer=True)
            parent.activateWindow()
        else:
            self.open_conversation_window(view.id).pane.focus_composer()

    def quick_switch(self, window: AppWindow) -> None:
        """Ctrl+K: search conversations and messages (ui.search_popup); a message opens with
        the conversation scrolled to it."""
        popup = SearchPopup(self.client, window)

        def chosen(cid: str) -> AppWindow:
            if isinstance(window, MainWindow):
                window.open_conversation(cid)
                return window
            return self.open_conversation_window(cid)

        def message(cid: str, seq: int, mid: str) -> None:
            shown = chosen(cid)
            pane = getattr(shown, "pane", None)
            if pane is not None:
                spawn(reveal(pane, cid, seq, mid))

        popup.conversationChosen.connect(chosen)
        popup.messageChosen.connect(message)
        popup.open()

    def open_settings(self, window: QWidget | None) -> None:
        dialog = SettingsDialog(self.prefs, window)
        dialog.open()
        dialog.raise_()
        dialog.activateWindow()

    def inspector(self) -> SyncInspector | None:
        """The sync inspector, while it is open."""
        return self._inspector

    def open_inspector(self, window: QWidget) -> None:
        if self._inspector is None:
            self._inspector = SyncInspector(self.client)
            self._inspector.setWindowTitle("Sync inspector — Concord")
            self._inspector.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            self._inspector.destroyed.connect(lambda: setattr(self, "_inspector", None))
        self._inspector.show()
        self._inspector.raise_()

    def about(self, window: QWidget) -> None:
        from server import __version__

        QMessageBox.about(
            window,
            "About Concord",
            f"Concord {__version__}\nEvery window, every device, the same truth.",
        )

    def quit(self) -> None:
        self.on_quit()

    def sign_out(self, window: AppWindow | None) -> None:
        """File → Sign out… (remote servers only): desktop/sign_out.py."""
        spawn(sign_out(self, window), self._error_in(window))

    def close_all(self) -> None:
        """Quitting: remember every open window, then close them (without forgetting them)."""
        self.save_layout()
        self._closing_all = True
        for window in list(self.windows):
            window.close()
        self._closing_all = False

    # --- sign-in (remote servers; the embedded one signs itself in) -----------------------------

    def _may_sign_in(self) -> bool:
        status = self.client.status
        return (
            self.profile.server_url is not None
            and status.state == "sign_in_required"
            and status.role == "leader"  # a follower is signed in through its leader
        )

    def _ask_to_sign_in(self) -> None:
        if not self._signing_in:
            spawn(self.sign_in(), self._error_in(self.active_window()))

    def _on_status(self, _status: Any) -> None:
        # Signed out while running (the refresh token was refused): ask again, once.
        if self._may_sign_in():
            self._ask_to_sign_in()

    def status_clicked(self, window: QWidget) -> None:
        """The status in a window was clicked: sign in if that is what it asks, else inspect."""
        if self._may_sign_in():
            self._ask_to_sign_in()
        else:
            self.open_inspector(window)

    async def sign_in(self) -> bool:
        """Ask for the password until the server accepts it or the user cancels.

        One dialog at a time; the last failure is shown in it; the username is the profile's
        (another user is another profile: ``--user``/``--profile``)."""
        if self._signing_in:
            return False
        self._signing_in = True
        error: str | None = None
        try:
            while self._may_sign_in():
                dialog = LoginDialog(
                    self.profile.server_url or "",
                    self.profile.username,
                    error,
                    self.active_window(),
                    keyring_problem=self.client.credentials.keyring_error,
                )
                dialog.username.setReadOnly(True)
                self.login_dialog = dialog
                if not await run_dialog(dialog):
                    return False
                try:
                    await self.client.sign_in(dialog.credentials()[1])
                    return True
                except Exception as exc:  # refused, unreachable: say so and ask again
                    log.warning("sign-in failed: %s", exc)
                    error = f"Sign-in failed: {getattr(exc, 'message', None) or error_text(exc)}"
            return True
        finally:
            self.login_dialog = None
            self._signing_in = False

    # --- conflicts and errors ---------------------------------------------------------------------

    def _on_conflict(self, conflict: Any) -> None:
        """Ask once per conversation: a conflict about it that comes while its dialog is open
        (a later edit that lost too) gets the same answer."""
        cid = conflict.conversation_id
        if cid in self._asking:
            self._asking[cid].append(conflict)
            return
        self._asking[cid] = [conflict]
        dialog = ConflictDialog(conflict, self.active_window())

        def done(_result: int) -> None:
            keep = dialog.choice() == "keep_mine"
            for each in self._asking.pop(cid, []):
                spawn(
                    self.client.resolve_conflict(each, keep_mine=keep),
                    self._error_in(self.active_window()),
                )

        dialog.finished.connect(done)
        dialog.open()

    def _on_error(self, info: Any) -> None:
        if info.kind == "keyring":  # once per profile, in plain words (keyring_notice.py)
            self.keyring_notice.show(info.message)
            return
        window = self.active_window()
        if window is not None:
            window.toast(info.message, "error")

    def _error_in(self, window: AppWindow | None) -> Callable[[BaseException], None]:
        return lambda exc: window.toast(error_text(exc), "error") if window is not None else None

    def toast_remote(self, text: str) -> None:
        if self.prefs.get("remote_toasts"):
            window = self.active_window()
            if window is not None:
                window.toast(text)

    # --- drafts ----------------------------------------------------------------------------------
    # A pane showing a conversation that disappears keeps its draft itself (clipboard + notice).
    # A draft of a gone conversation that no pane shows (a send refused after the delete, a
    # crash before the draft was taken) is rescued here a moment later, by one process.

    def set_aside(self, cid: str, text: str) -> None:
        """The user deletes a conversation: its draft goes with it, unless the delete does not
        happen after all (refused, or "reload" after a conflict): then it comes back."""
        if text.strip():
            self._set_aside[cid] = text

    def _track_drafts(self, changed: list[Any], removed: list[str]) -> None:
        self._titles.update((v.id, v.title) for v in changed)
        for view in changed:
            text = self._set_aside.pop(view.id, None)
            if text is not None and not self.client.draft(view.id):
                self.client.set_draft(view.id, text)  # the delete did not happen: back it comes
        for cid in removed:
            self._rescue_later(cid)

    def _draft_changed(self, cid: str, text: str) -> None:
        if text and self.client.conversation(cid) is None:
            self._rescue_later(cid)

    def _rescue_later(self, cid: str) -> None:
        QTimer.singleShot(RESCUE_MS, self, lambda: self.rescue_draft(cid))

    def rescue_draft(self, cid: str) -> str | None:
        """Copy the draft of a gone conversation to the clipboard (with a notice) and clear it;
        returns the notice, or None when there was nothing to rescue."""
        if not self.windows or self.client.conversation(cid) is not None:
            return None  # quitting (the draft stays for the next start), or it came back
        try:
            text = self.client.take_draft(cid)  # of several processes, one gets it
        except Exception:
            log.exception("could not take the draft of a conversation that is gone")
            return None
        if not text.strip():
            return None
        notice = keep_on_clipboard(self._titles.pop(cid, ""), text)
        window = self.active_window()
        if window is not None:
            window.toast(notice)
        return notice

    # --- layout ----------------------------------------------------------------------------------

    def save_layout(self, closing: AppWindow | None = None) -> None:
        """This process's open windows with their geometry. The first process remembers the
        last window closing too; a separate process whose last window closes forgets its file."""
        windows = [w for w in self.windows if w is not closing]
        if not windows and closing is not None and self.layout.primary:
            windows = [closing]
        self.layout.save(
            [layout.entry(w.kind, w.conversation_id(), w.saveGeometry()) for w in windows]
        )

    def restore_layout(self) -> None:
        """Reopen this process's windows and those that quit separate processes left."""
        for saved in self.layout.load():
            cid = saved.get("conversation")
            known = isinstance(cid, str) and self.client.conversation(cid) is not None
            if saved.get("kind") == "conversation":
                if not (known and isinstance(cid, str)):
                    continue
                window: AppWindow = self.open_conversation_window(cid)
            else:
                window = self.open_main_window(cid if known and isinstance(cid, str) else None)
            geometry = layout.geometry_of(saved.get("geometry"))
            if geometry is not None:
                window.restoreGeometry(geometry)
        if not any(isinstance(w, MainWindow) for w in self.windows):
            self.open_main_window()
        if self.layout.orphans():  # theirs are ours now: saved here first, then their files go
            self.save_layout()
            self.layout.adopt_orphans()
