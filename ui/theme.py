"""Light, dark, or the system's look: ``apply_theme(app, "system" | "light" | "dark")``.

Qt 6.8+ can ask the platform for a color scheme (``QStyleHints.setColorScheme``); where the
platform follows (Windows 11, macOS, recent GNOME/KDE), its own palette is used. Where it does not
— older Qt, unsupported desktops, the ``offscreen`` platform — the app switches to the Fusion
style with a palette of our own, so the change is always visible. ``"system"`` undoes both.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFontDatabase, QGuiApplication, QPalette
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
    _Role.PlaceholderText: "#9a9aa0",
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
    _Role.PlaceholderText: "#6b6b73",
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
        from ui.style import ContrastStyle  # imports this module

        if not isinstance(app.style(), ContrastStyle):  # native styles may ignore a palette
            _original_style.setdefault(key, app.style().name() or "Fusion")
            app.setStyle(ContrastStyle())
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


# --- the colours the app paints itself ----------------------------------------------------------
#
# Delegates and stylesheets take every colour they set from here, so one test can check every
# pair they paint (tests/ui/test_contrast.py) against WCAG AA: 4.5:1 for text, 3:1 for icons,
# markers and control outlines. Bubble fills are decoration (the text on them is what is checked).

AVATARS = (  # white initials on each: at least 5:1
    "#c62828",
    "#ad4e00",
    "#7c6a00",
    "#2e7d32",
    "#00796b",
    "#1565c0",
    "#5e35b1",
    "#ad1457",
    "#455a64",
    "#6d4c41",
)
_INK = {
    "light": {
        "muted": "#6b6b73",
        "hover": "#eef0f4",
        "accent": "#2f64cc",
        "danger": "#c62828",
        "on_danger": "#ffffff",
        "bubble": "#f0f1f4",
        "bubble_own": "#dde9ff",
        "muted_own": "#5b6478",
        "link": "#2556c4",
        "separator": "#eceef2",
        "on_separator": "#5d5d66",
        "focus": "#3d6fd8",
        "outline": "#767680",
        "authors": "#b3261e #b5470b #7a6400 #2e7d32 #00796b #1565c0 #6a1b9a #ad1457",
    },
    "dark": {
        "muted": "#9a9aa0",
        "hover": "#2a2a2f",
        "accent": "#3b6fd6",
        "danger": "#ff7b7b",
        "on_danger": "#1f1f22",
        "bubble": "#2c2c31",
        "bubble_own": "#213252",
        "muted_own": "#a9b8d6",
        "link": "#8ab4ff",
        "separator": "#2c2c31",
        "on_separator": "#a4a4aa",
        "focus": "#6f9bff",
        "outline": "#9a9aa2",
        "authors": "#ff8a80 #ffab70 #e0c35a #81c784 #4dd0c0 #82b1ff #ce93d8 #f48fb1",
    },
}


@dataclass(frozen=True, slots=True)
class Ink:
    """The colours painted by the app's own code in one theme (``ink(palette)``)."""

    dark: bool
    base: QColor  # the list/message background (the palette's Base)
    window: QColor
    text: QColor
    muted: QColor  # secondary text: previews, times, markers
    hover: QColor  # a row under the pointer
    highlight: QColor  # a selected row
    on_highlight: QColor
    accent: QColor  # the unread badge
    on_accent: QColor
    danger: QColor  # failed markers and "Not sent"
    on_danger: QColor  # the "!" inside the failed marker
    bubble: QColor  # other people's messages
    bubble_own: QColor  # mine
    muted_own: QColor  # secondary text on my bubbles
    link: QColor
    separator: QColor  # the day separator's pill
    on_separator: QColor
    focus: QColor  # the keyboard-focus outline around a message
    outline: QColor  # outlines of check boxes and radio buttons (ui/style.py)
    authors: tuple[QColor, ...]  # author names on bubbles, one per person (stable)

    def author(self, name: str) -> QColor:
        return self.authors[stable_index(name, len(self.authors))]


_inks: dict[int, Ink] = {}


def ink(palette: QPalette) -> Ink:
    """The app's own colours for ``palette`` (dark or light by its Window colour). Cached per
    palette; treat the colours as read-only (copy one before changing it)."""
    key = palette.cacheKey()
    found = _inks.get(key)
    if found is None:
        if len(_inks) > 64:
            _inks.clear()
        found = _inks[key] = _make_ink(palette)
    return found


def _make_ink(palette: QPalette) -> Ink:
    dark = is_dark(palette)
    table = _INK["dark" if dark else "light"]

    def c(name: str) -> QColor:
        return QColor(table[name])

    return Ink(
        dark=dark,
        base=palette.color(_Role.Base),
        window=palette.color(_Role.Window),
        text=palette.color(_Role.Text),
        muted=c("muted"),
        hover=c("hover"),
        highlight=palette.color(_Role.Highlight),
        on_highlight=palette.color(_Role.HighlightedText),
        accent=c("accent"),
        on_accent=QColor("#ffffff"),
        danger=c("danger"),
        on_danger=c("on_danger"),
        bubble=c("bubble"),
        bubble_own=c("bubble_own"),
        muted_own=c("muted_own"),
        link=c("link"),
        separator=c("separator"),
        on_separator=c("on_separator"),
        focus=c("focus"),
        outline=c("outline"),
        authors=tuple(QColor(x) for x in table["authors"].split()),
    )


TEXT, GRAPHIC = 4.5, 3.0  # WCAG AA: text, and icons/markers/control outlines


def pairs(i: Ink) -> list[tuple[str, QColor, QColor, float]]:
    """Every (what, foreground, background, minimum contrast) the app's own painting uses."""
    out = [
        ("row title", i.text, i.base, TEXT),
        ("row title, hovered", i.text, i.hover, TEXT),
        ("row preview/time", i.muted, i.base, TEXT),
        ("row preview/time, hovered", i.muted, i.hover, TEXT),
        ("selected row text and markers", i.on_highlight, i.highlight, TEXT),
        ("unread badge text", i.on_accent, i.accent, TEXT),
        ("unread badge", i.accent, i.base, GRAPHIC),
        ("unread badge, hovered", i.accent, i.hover, GRAPHIC),
        ("unread badge text, selected", i.highlight, i.on_highlight, TEXT),
        ("failed marker", i.danger, i.base, GRAPHIC),
        ("failed marker, hovered", i.danger, i.hover, GRAPHIC),
        ("failed marker's mark", i.on_danger, i.danger, GRAPHIC),
        ("error text", i.danger, i.window, TEXT),
        ("error text on the list", i.danger, i.base, TEXT),
        ("message text", i.text, i.bubble, TEXT),
        ("my message text", i.text, i.bubble_own, TEXT),
        ("message time", i.muted, i.bubble, TEXT),
        ("my message time, Sending…", i.muted_own, i.bubble_own, TEXT),
        ("Not sent", i.danger, i.bubble_own, TEXT),
        ("link", i.link, i.bubble, TEXT),
        ("link in my message", i.link, i.bubble_own, TEXT),
        ("day separator", i.on_separator, i.separator, TEXT),
        ("empty state", i.muted, i.base, TEXT),
        ("empty state on the window", i.muted, i.window, TEXT),
        ("focus outline", i.focus, i.base, GRAPHIC),
        ("check box outline", i.outline, i.window, GRAPHIC),
        ("check box outline in a list", i.outline, i.base, GRAPHIC),
    ]
    out += [(f"author {a.name()}", a, i.bubble, TEXT) for a in i.authors]
    out += [(f"avatar {a}", QColor("#ffffff"), QColor(a), TEXT) for a in AVATARS]
    return out


def palette_pairs(palette: QPalette) -> list[tuple[str, QColor, QColor, float]]:
    """The palette's own text/background pairs (what Qt's styles paint with)."""
    c = palette.color
    return [
        ("window text", c(_Role.WindowText), c(_Role.Window), TEXT),
        ("text", c(_Role.Text), c(_Role.Base), TEXT),
        ("alternate rows", c(_Role.Text), c(_Role.AlternateBase), TEXT),
        ("button text", c(_Role.ButtonText), c(_Role.Button), TEXT),
        ("selected text", c(_Role.HighlightedText), c(_Role.Highlight), TEXT),
        ("placeholder", c(_Role.PlaceholderText), c(_Role.Base), TEXT),
        ("placeholder on the window", c(_Role.PlaceholderText), c(_Role.Window), TEXT),
        ("link", c(_Role.Link), c(_Role.Base), TEXT),
        ("tooltip", c(_Role.ToolTipText), c(_Role.ToolTipBase), TEXT),
    ]


def luminance(color: QColor) -> float:
    """WCAG relative luminance."""

    def channel(v: float) -> float:
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = color.redF(), color.greenF(), color.blueF()
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: QColor, b: QColor) -> float:
    """WCAG contrast ratio, 1 to 21."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def stable_index(key: str, n: int) -> int:
    """``key`` hashed into ``range(n)``, the same in every process and on every run."""
    return zlib.crc32(key.encode("utf-8")) % n


def avatar_color(key: str) -> QColor:
    """A conversation's avatar colour: stable per id."""
    return QColor(AVATARS[stable_index(key, len(AVATARS))])


def initials(title: str) -> str:
    """Up to two initials: the first letter or digit of the first two words ("?" if none)."""
    letters = [next((ch for ch in w if ch.isalnum()), "") for w in title.split()]
    letters = [x for x in letters if x]
    return ("".join(letters[:2]) or "?").upper()


EMOJI_FAMILIES = ("Noto Color Emoji", "Apple Color Emoji", "Segoe UI Emoji", "Twemoji", "JoyPixels")
_emoji: list[str | None] = []


def ensure_emoji_font() -> str | None:
    """Draw emoji with a colour emoji font when one is installed (the .deb recommends
    fonts-noto-color-emoji); returns the family used. Once per process."""
    if not _emoji:
        installed = set(QFontDatabase.families())
        family = next((f for f in EMOJI_FAMILIES if f in installed), None)
        if family is not None:
            QFontDatabase.setApplicationEmojiFontFamilies([family])
        _emoji.append(family)
    return _emoji[0]
