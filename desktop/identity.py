"""Who the app is to the desktop, defined once.

``APP_ID`` is the one reverse-DNS application id. It names the freedesktop ``.desktop`` file and
the icon (``packaging/linux/``), the AppStream component (``<APP_ID>.metainfo.xml``), Qt's
``desktopFileName`` (the Wayland ``app_id``, and the ``application://<APP_ID>.desktop`` that the
launcher badge is addressed to), and later the macOS bundle identifier and the Windows
AppUserModelID.

Why ``io.github.concordchat.Concord``: the project has no domain of its own, so it takes the
code-hosting namespace it would be published under (``github.com/concordchat``, reversed as
Flathub asks: ``io.github.<owner>.<Name>``). Every part is plain ``[A-Za-z0-9]`` on purpose: a
``-`` is not allowed in a Flatpak id or a D-Bus interface name, and a ``_`` is not allowed in a
macOS bundle identifier, so an owner such as ``concord-chat`` would have needed two spellings.
Changing it later orphans installed launchers, badges and settings: treat it as permanent.

Only the constants are needed to import this module; Qt is imported when an icon is asked for.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from server import __version__

APP_ID = "io.github.concordchat.Concord"
APP_NAME = "Concord"
SUMMARY = "Messenger whose windows and devices stay in sync"
VERSION = __version__
ICON_SIZES = (16, 32, 48, 64, 128, 256)

# Shipped inside the package (wheel, venv, frozen bundle alike); copies of packaging/linux/icons/.
RESOURCES = Path(__file__).resolve().parent / "resources"


def icon_files() -> dict[int, Path]:
    """The app icon's PNGs by pixel size (those present), smallest first."""
    found = {size: RESOURCES / "icons" / f"{APP_ID}-{size}.png" for size in ICON_SIZES}
    return {size: path for size, path in found.items() if path.is_file()}


def app_icon() -> Any:
    """The app icon as a ``QIcon`` with every shipped size (Qt picks and scales the nearest).
    A null icon only if the resources are missing from the installation."""
    from PySide6.QtGui import QIcon

    icon = QIcon()
    for path in icon_files().values():
        icon.addFile(str(path))
    return icon


def apply_identity(app: Any) -> None:
    """Name the running application after ``APP_ID`` and give it its icon. Call it right after
    the ``QApplication`` exists and before any window or tray icon is shown."""
    from PySide6.QtGui import QGuiApplication

    app.setApplicationName(APP_NAME)  # also X11's WM_CLASS class: the .desktop StartupWMClass
    app.setApplicationVersion(VERSION)
    QGuiApplication.setDesktopFileName(APP_ID)
    app.setWindowIcon(app_icon())
    if sys.platform == "win32":  # the taskbar groups windows and pins shortcuts by this id
        import ctypes

        ctypes.windll.shell32.SetCurrentProcessExplicitAppUserModelID(APP_ID)
