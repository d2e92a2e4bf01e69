"""Themes change the whole app visibly, even on the offscreen platform (Fusion-palette
fallback), and "system" undoes them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QMainWindow

from ui.style import ContrastStyle
from ui.theme import apply_theme, current_scheme, palette_for

WINDOW = QPalette.ColorRole.Window


@pytest.fixture
def app(qapp) -> Iterator[QApplication]:  # type: ignore[no-untyped-def]
    before = qapp.palette().color(WINDOW).name()
    yield qapp
    apply_theme(qapp, "system")  # other tests see the default look again
    assert qapp.palette().color(WINDOW).name() == before


def test_dark_and_light_change_a_window_palette(app: QApplication, qtbot) -> None:  # type: ignore[no-untyped-def]
    window = QMainWindow()
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)

    assert apply_theme(app, "dark") == "dark"
    qtbot.waitUntil(lambda: window.palette().color(WINDOW).lightness() < 80, timeout=2000)
    assert app.palette().color(QPalette.ColorRole.Text).lightness() > 180
    assert current_scheme(app) == "dark"

    apply_theme(app, "light")
    qtbot.waitUntil(lambda: window.palette().color(WINDOW).lightness() > 200, timeout=2000)
    assert app.palette().color(QPalette.ColorRole.Text).lightness() < 80
    assert current_scheme(app) == "light"

    apply_theme(app, "dark")
    apply_theme(app, "system")
    qtbot.waitUntil(lambda: window.palette().color(WINDOW).lightness() > 200, timeout=2000)
    assert app.palette().resolveMask() == 0  # no palette of ours left
    assert current_scheme(app) == "light"  # what the offscreen platform looks like


def test_unknown_theme_means_system_and_repeats_are_harmless(app: QApplication) -> None:
    assert apply_theme(app, "purple") == "system"
    for _ in range(3):
        apply_theme(app, "dark")
    style = app.style()
    assert current_scheme(app) == "dark" and isinstance(style, ContrastStyle)
    assert style.baseStyle().name().lower() == "fusion"


def test_palettes_are_readable() -> None:
    for theme, dark in (("dark", True), ("light", False)):
        pal = palette_for(theme)
        window, text = pal.color(WINDOW), pal.color(QPalette.ColorRole.WindowText)
        assert abs(window.lightness() - text.lightness()) > 150
        assert (window.lightness() < 128) is dark
        disabled = pal.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
        assert disabled != pal.color(QPalette.ColorRole.Text)
