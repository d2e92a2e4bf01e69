"""Light, dark, or the system's look: ``apply_theme(app, "system" | "light" | "dark")``.

Qt 6.8+ can ask the platform for a color scheme (``QStyleHints.setColorScheme``); where the
platform follows (Windows 11, macOS, recent GNOME/KDE), its own palette is used. Where it does not
— older Qt, unsupported desktops, the ``offscreen`` platform — the app switches to the Fusion
style with a palette of our own, so the change is always visible. ``"system"`` undoes both.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

log = logging.getLogger(__name__)

THEMES = ("system", "light", "dark")
_Role, _Group = QPalette.ColorRole, QPalette.ColorGroup
_original_style: dict[int, str] = {}  # per application: the style to go back to on "system"

DARK = {
    _Role.Window: "#2b2b2e",
    _Role.WindowText: "#e8e8ea",
    _Role.Base: "#1f1f22",
    _Role.AlternateBase: "#2b2b2e",
    _Role.ToolTipBase: "#3a3a3e",
    _Role.ToolTipText: "#e8e8ea",
    _Role.PlaceholderText: "#8b8b90",
    _Role.Text: "#e8e8ea",
    _Role.Button: "#35353a",
    _Role.ButtonText: "#e8e8ea",
    _Role.BrightText: "#ff6b6b",
    _Role.Light: "#4a4a50",
    _Role.Midlight: "#3f3f44",
    _Role.Mid: "#2f2f33",
    _Role.Dark: "#18181a",
    _Role.Shadow: "#000000",
    _Role.Highlight: "#3d6fd8",
    _Role.HighlightedText: "#ffffff",
    _Role.Link: "#7aa7ff",
    _Role.LinkVisited: "#b59cff",
}
LIGHT = {
    _Role.Window: "#f3f3f5",
    _Role.WindowText: "#1d1d1f",
    _Role.Base: "#ffffff",
    _Role.AlternateBase: "#f5f5f7",
    _Role.ToolTipBase: "#ffffdc",
    _Role.ToolTipText: "#1d1d1f",
    _Role.PlaceholderText: "#80808a",
    _Role.Text: "#1d1d1f",
    _Role.Button: "#ececef",
    _Role.ButtonText: "#1d1d1f",
    _Role.BrightText: "#d00000",
    _Role.Light: "#ffffff",
    _Role.Midlight: "#e4e4e8",
    _Role.Mid: "#b8b8bf",
    _Role.Dark: "#9a9aa2",
    _Role.Shadow: "#5a5a60",
    _Role.Highlight: "#3d6fd8",
    _Role.HighlightedText: "#ffffff",
    _Role.Link: "#2556c4",
    _Role.LinkVisited: "#6a3fc4",
}
_DISABLED = (_Role.WindowText, _Role.Text, _Role.ButtonText, _Role.HighlightedText)


def palette_for(theme: str) -> QPalette:
    """The Fusion palette used for ``"light"`` or ``"dark"`` when the platform does not help."""
    colors = DARK if theme == "dark" else LIGHT
    palette = QPalette()
    for role, color in colors.items():
        palette.setColor(role, QColor(color))
    muted = QColor("#7a7a80" if theme == "dark" else "#a0a0a6")
    for role in _DISABLED:
        palette.setColor(_Group.Disabled, role, muted)
    palette.setColor(_Group.Disabled, _Role.Highlight, QColor("#55555a"))
    return palette


def _scheme(theme: str) -> Qt.ColorScheme:
    return {"light": Qt.ColorScheme.Light, "dark": Qt.ColorScheme.Dark}.get(
        theme, Qt.ColorScheme.Unknown
    )


def _platform_follows(app: QGuiApplication, theme: str) -> bool:
    """Ask the platform for the scheme (Qt 6.8+); True when it took effect."""
    hints = app.styleHints()
    if not hasattr(hints, "setColorScheme"):
        return theme == "system"
    if theme == "system":
        hints.unsetColorScheme()
        return True
    hints.setColorScheme(_scheme(theme))
    return hints.colorScheme() == _scheme(theme)


def apply_theme(app: QGuiApplication, theme: str) -> str:
    """Apply ``theme`` to the whole application; returns the theme applied (an unknown name
    counts as ``"system"``)."""
    if theme not in THEMES:
        log.warning("unknown theme %r; using the system's", theme)
        theme = "system"
    key = id(app)
    followed = _platform_follows(app, theme)
    if followed:
        if isinstance(app, QApplication) and key in _original_style:
            app.setStyle(_original_style.pop(key))
        app.setPalette(QPalette())  # back to the platform's (or the style's) own palette
        return theme
    if isinstance(app, QApplication):
        style = app.style().name()
        if style.lower() != "fusion":  # native styles may ignore a custom palette
            _original_style.setdefault(key, style)
            app.setStyle("Fusion")
    app.setPalette(palette_for(theme))
    return theme


def is_dark(palette: QPalette) -> bool:
    window, text = palette.color(_Role.Window), palette.color(_Role.WindowText)
    return window.lightness() < text.lightness()


def current_scheme(app: QGuiApplication) -> str:
    """``"dark"`` or ``"light"``: what the app looks like now (whatever asked for it)."""
    hints = app.styleHints()
    scheme = hints.colorScheme() if hasattr(hints, "colorScheme") else Qt.ColorScheme.Unknown
    if app.palette().resolveMask() == 0 and scheme != Qt.ColorScheme.Unknown:
        return "dark" if scheme == Qt.ColorScheme.Dark else "light"
    return "dark" if is_dark(app.palette()) else "light"
