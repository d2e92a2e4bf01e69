"""Owns every window of this process: opening, the Window menu, layout save/restore, visibility
reports to the client, and where conflicts, errors and toasts are shown."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QByteArray, QObject, Qt, QTimer
from PySide6.QtWidgets import QApplication, QInputDialog, QMenu, QMessageBox, QWidget

from desktop.profile import Profile, read_json, write_json
from ui.bridge import ClientBridge
from ui.dialogs import ConflictDialog, LoginDialog, SettingsDialog, run_dialog
from ui.drafts import keep_on_clipboard
from ui.inspector import SyncInspector
from ui.models import ConversationListModel
from ui.quick_switcher import QuickSwitcher
from ui.tasks import error_text, spawn

from .windows import AppWindow, ConversationWindow, MainWindow

log = logging.getLogger(__name__)
RESCUE_MS = 500  # a pane showing a conversation that is gone takes its draft first


class WindowManager(QObject):
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
        self._layout_path = profile.config_dir / "windows.json"
        self._closing_all = False
        self._signing_in = False
        self.login_dialog: LoginDialog | None = None  # the open sign-in dialog, if any
        self._asking: dict[str, list[Any]] = {}  # open conflict dialogs: what each answers

    # --- windows ---------------------------------------------------------------------------------

    def _track(self, window: AppWindow) -> AppWindow:
        self.windows.append(window)
        window.closed.connect(self._closed)
        log.info("window opened: %s (%d open)", window.kind, len(self.windows))
        return window

    def _closed(self, window: AppWindow) -> None:
        if not self._closing_all:
            self.save_layout(closing=window)
        if window in self.windows:
            self.windows.remove(window)
        self.visibility_changed()
        if not self.windows:
            self.on_quit()

    def open_main_window(self, conversation_id: str | None = None) -> MainWindow:
        window = MainWindow(self)
        self._track(window)
        window.show()
        if conversation_id:
            window.open_conversation(conversation_id)
        window.raise_()
        window.activateWindow()
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

    def open_from_request(self, conversation_id: str | None) -> None:
        """Another launch asked for a window (over the bus)."""
        if conversation_id:
            self.open_conversation_window(conversation_id)
        else:
            self.open_main_window()

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
        switcher = QuickSwitcher(self.list_model, window)

        def chosen(cid: str) -> None:
            if isinstance(window, MainWindow):
                window.open_conversation(cid)
            else:
                self.open_conversation_window(cid)

        switcher.chosen.connect(chosen)
        switcher.open()

    def open_settings(self, window: QWidget) -> None:
        SettingsDialog(self.prefs, window).open()

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
        """Every open window with its geometry; the last one closing is remembered too."""
        windows = [w for w in self.windows if w is not closing] or (
            [closing] if closing is not None else []
        )
        entries = [
            {
                "kind": w.kind,
                "conversation": w.conversation_id(),
                "geometry": base64.b64encode(bytes(w.saveGeometry().data())).decode(),
            }
            for w in windows
        ]
        if entries:
            write_json(self._layout_path, {"windows": entries})

    def restore_layout(self) -> None:
        entries = read_json(self._layout_path).get("windows") or []
        for entry in entries[:20]:
            if not isinstance(entry, dict):
                continue
            cid = entry.get("conversation")
            if entry.get("kind") == "conversation":
                if not (isinstance(cid, str) and self.client.conversation(cid)):
                    continue
                window: AppWindow = self.open_conversation_window(cid)
            else:
                window = self.open_main_window(
                    cid if isinstance(cid, str) and self.client.conversation(cid) else None
                )
            try:
                window.restoreGeometry(QByteArray(base64.b64decode(entry.get("geometry", ""))))
            except (ValueError, TypeError):
                pass
        if not any(isinstance(w, MainWindow) for w in self.windows):
            self.open_main_window()
