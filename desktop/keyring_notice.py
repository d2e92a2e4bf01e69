"""Notices a profile shows once, ever (remembered in the profile's ``notices.json``): today the
missing keyring. They are plain words in a non-blocking toast that sits above the composer,
never an error naming a Python class."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer

from .profile import read_json, write_json

log = logging.getLogger(__name__)
KEYRING = "No system keyring found — you will need to sign in again next time Concord starts."
KEYRING_MS = 15_000  # long enough to read; a click dismisses it sooner
RETRY_MS = 500  # no window yet (the keyring is tried while the app starts): try again
RETRIES = 120


def first_time(config_dir: Path, key: str) -> bool:
    """True the first time ``key`` is asked about for this profile (then remembered)."""
    path = config_dir / "notices.json"
    seen = read_json(path)
    if seen.get(key):
        return False
    seen[key] = True
    try:
        write_json(path, seen)
    except OSError:
        log.warning("could not remember notice %s", key, exc_info=True)
    return True


class KeyringNotice(QObject):
    """Tells the user once per profile that sign-in will not be remembered; ``window()`` gives
    the window to show it in (None while none is open: it waits for one)."""

    def __init__(self, config_dir: Path, window: Callable[[], Any]) -> None:
        super().__init__()
        self.config_dir = config_dir
        self.window = window
        self._pending = False
        self._tries = 0

    @property
    def pending(self) -> bool:
        """Waiting for a window to show the notice in."""
        return self._pending

    def show(self, problem: str) -> None:
        """The keyring is unusable (``problem`` says why, for the log)."""
        log.info("keyring unusable: %s", problem)
        if self._pending:
            return
        self._pending = True
        self._tries = 0
        self._try()

    def _try(self) -> None:
        window = self.window()
        toasts = getattr(window, "toasts", None)
        if toasts is None:
            self._tries += 1
            if self._tries < RETRIES:
                QTimer.singleShot(RETRY_MS, self, self._try)
            else:
                self._pending = False
            return
        self._pending = False
        if first_time(self.config_dir, "keyring"):
            toasts.show_toast(KEYRING, "info", KEYRING_MS)
