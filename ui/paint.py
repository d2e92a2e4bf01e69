"""What the item delegates share: palette groups, scaled fonts, round pens, right-to-left
mirroring and the style's item background.

Everything is drawn in floating-point device-independent coordinates (crisp at any device pixel
ratio), and mirrored for right-to-left layouts through :func:`visual`.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPalette, QPen
from PySide6.QtWidgets import QApplication, QStyle, QStyleOptionViewItem

from ui.theme import ink

Index = QModelIndex | QPersistentModelIndex
PAD = 10.0
GAP = 6.0


def danger_color(palette: QPalette) -> QColor:
    """A red readable as text on the palette's window and base (lighter on dark themes)."""
    return ink(palette).danger


def color_group(opt: QStyleOptionViewItem) -> QPalette.ColorGroup:
    if not opt.state & QStyle.StateFlag.State_Enabled:
        return QPalette.ColorGroup.Disabled
    if not opt.state & QStyle.StateFlag.State_Active:
        return QPalette.ColorGroup.Inactive
    return QPalette.ColorGroup.Normal


def scaled_font(font: QFont, factor: float) -> QFont:
    """``font`` scaled by ``factor``, whether it is sized in points or in pixels."""
    out = QFont(font)
    if out.pointSizeF() > 0:
        out.setPointSizeF(max(6.0, out.pointSizeF() * factor))
    elif out.pixelSize() > 0:
        out.setPixelSize(max(8, round(out.pixelSize() * factor)))
    return out


def round_pen(color: QColor, width: float) -> QPen:
    pen = QPen(color, width)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    return pen


def visual(opt: QStyleOptionViewItem, rect: QRectF) -> QRectF:
    """``rect`` laid out left-to-right, mirrored inside the row for right-to-left layouts."""
    if opt.direction != Qt.LayoutDirection.RightToLeft:
        return rect
    row = QRectF(opt.rect)
    return QRectF(row.left() + row.right() - rect.right(), rect.top(), rect.width(), rect.height())


def style_background(opt: QStyleOptionViewItem, painter: QPainter) -> None:
    """The style's selection/focus background, without the default text."""
    opt.text = ""
    opt.features &= ~QStyleOptionViewItem.ViewItemFeature.HasDisplay
    style = opt.widget.style() if opt.widget is not None else QApplication.style()
    style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
