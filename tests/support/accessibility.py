"""Walks a widget tree through Qt's accessibility interfaces (what a screen reader reads) and
lists every interactive control that has no accessible name or no sensible role."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAccessible
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSlider,
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QLineEdit,
    QMenu,
    QMenuBar,
    QPlainTextEdit,
    QRadioButton,
    QTabBar,
    QTextEdit,
    QWidget,
)

R = QAccessible.Role
BUTTONS = {R.PushButton, R.ButtonMenu, R.ButtonDropDown, R.CheckBox, R.RadioButton}
# What each kind of control must say it is; the first matching class wins.
ROLES: list[tuple[type, set[QAccessible.Role]]] = [
    (QCheckBox, {R.CheckBox}),
    (QRadioButton, {R.RadioButton}),
    (QAbstractButton, BUTTONS),
    (QComboBox, {R.ComboBox}),
    (QLineEdit, {R.EditableText}),
    (QPlainTextEdit, {R.EditableText, R.StaticText}),
    (QTextEdit, {R.EditableText, R.StaticText}),
    (QAbstractItemView, {R.List, R.Table, R.Tree}),
    (QAbstractSpinBox, {R.SpinBox}),
    (QAbstractSlider, {R.Slider, R.ScrollBar, R.Dial}),
    (QTabBar, {R.PageTabList}),
    (QMenuBar, {R.MenuBar}),
    (QMenu, {R.PopupMenu}),
]
INTERACTIVE = tuple(kind for kind, _roles in ROLES)


def interactive(widget: QWidget, root: QWidget) -> bool:
    """Shown (within ``root``) and something a user operates: a control, or anything that takes
    the keyboard with Tab."""
    if not widget.isVisibleTo(root) and widget is not root:
        return False
    takes_tab = bool(widget.focusPolicy() & Qt.FocusPolicy.TabFocus)
    return isinstance(widget, INTERACTIVE) or takes_tab


def describe(widget: QWidget) -> str:
    name = widget.objectName() or widget.accessibleName() or ""
    text = getattr(widget, "text", None)
    label = text() if callable(text) and isinstance(widget, QAbstractButton) else ""
    parent = widget.parentWidget()
    return f"{type(widget).__name__}({name or label!r}) in {type(parent).__name__}"


def problems(root: QWidget) -> list[str]:
    """Every interactive control under ``root`` (itself included) without a name or a role."""
    found = []
    for widget in [root, *root.findChildren(QWidget)]:
        if not interactive(widget, root):
            continue
        iface = QAccessible.queryAccessibleInterface(widget)
        if iface is None or not iface.isValid():
            found.append(f"{describe(widget)}: no accessible interface")
            continue
        name = iface.text(QAccessible.Text.Name).strip()
        role = iface.role()
        wanted = next((roles for kind, roles in ROLES if isinstance(widget, kind)), None)
        if not name and not isinstance(widget, QMenuBar | QAbstractSlider):
            found.append(f"{describe(widget)}: no accessible name")
        if wanted is not None and role not in wanted:
            found.append(f"{describe(widget)}: role {role.name}, expected one of {wanted}")
        if wanted is None and role in (R.Client, R.NoRole):
            found.append(f"{describe(widget)}: takes the keyboard but has role {role.name}")
    return found
