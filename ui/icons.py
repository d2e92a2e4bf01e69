"""Small icons drawn with QPainter (no image files): the sync-state glyphs.

Every state has its own color *and* its own shape, so the states stay distinguishable for
people who cannot tell the colors apart and in monochrome themes:

===================  =========  ==========================================
state                color      shape
===================  =========  ==========================================
live                 green      filled circle
connecting           amber      ring (outline circle)
reconnecting         amber      half-filled circle
unreachable          grey       outlined circle with a diagonal slash
polling              blue       filled diamond
offline              grey       outlined square with a diagonal slash
sign_in_required     red        filled triangle with an exclamation mark
===================  =========  ==========================================
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QGuiApplication, QPainter, QPainterPath, QPen, QPixmap, QPolygonF

from ui.theme import is_dark

# On the light window, and (STATE_COLORS_DARK) on the dark one: 3:1 or more (WCAG AA, graphics).
STATE_COLORS: dict[str, str] = {
    "live": "#2e9d4f",
    "connecting": "#a86f00",
    "reconnecting": "#a86f00",
    "unreachable": "#8a8a8a",
    "polling": "#2f7bd8",
    "offline": "#8a8a8a",
    "sign_in_required": "#d33a2c",
}
STATE_SHAPES: dict[str, str] = {
    "live": "disc",
    "connecting": "ring",
    "reconnecting": "half",
    "unreachable": "slashed-circle",
    "polling": "diamond",
    "offline": "slashed-square",
    "sign_in_required": "warning",
}


STATE_COLORS_DARK: dict[str, str] = {
    "live": "#4caf6a",
    "connecting": "#d39b00",
    "reconnecting": "#d39b00",
    "unreachable": "#9a9a9a",
    "polling": "#5b9bf0",
    "offline": "#9a9a9a",
    "sign_in_required": "#ff6b6b",
}


def state_color(state: str, dark: bool = False) -> QColor:
    colors = STATE_COLORS_DARK if dark else STATE_COLORS
    return QColor(colors.get(state, colors["offline"]))


def paint_state_glyph(
    painter: QPainter, rect: QRectF, state: str, dark: bool | None = None
) -> None:
    """Draw the glyph of ``state`` inside ``rect`` (keeps the painter's state), in the colours
    for a dark or light background (by default: the application palette's)."""
    if dark is None:
        dark = is_dark(QGuiApplication.palette())
    color = state_color(state, dark)
    shape = STATE_SHAPES.get(state, "slashed-square")
    side = min(rect.width(), rect.height())
    r = QRectF(0, 0, side, side)
    r.moveCenter(rect.center())
    pen_w = max(1.0, side / 7)
    inner = r.adjusted(pen_w / 2, pen_w / 2, -pen_w / 2, -pen_w / 2)
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    pen = QPen(color, pen_w)
    if shape == "disc":
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(color)
        painter.drawEllipse(r)
    elif shape == "ring":
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawEllipse(inner)
    elif shape == "half":
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawEllipse(inner)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(color)
        painter.drawPie(inner, 90 * 16, 180 * 16)  # the left half
    elif shape == "diamond":
        c = r.center()
        h = side / 2
        x, y = c.x(), c.y()
        diamond = QPolygonF(
            [QPointF(x, y - h), QPointF(x + h, y), QPointF(x, y + h), QPointF(x - h, y)]
        )
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(color)
        painter.drawPolygon(diamond)
    elif shape == "warning":
        path = QPainterPath()
        path.moveTo(r.center().x(), r.top())
        path.lineTo(r.right(), r.bottom())
        path.lineTo(r.left(), r.bottom())
        path.closeSubpath()
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(color)
        painter.drawPath(path)
        mark = QPen(QColor("#1f1f22" if dark else "white"), max(1.0, side / 8))
        mark.setCapStyle(Qt.PenCapStyle.RoundCap)
        painter.setPen(mark)
        x = r.center().x()
        painter.drawLine(QPointF(x, r.top() + side * 0.38), QPointF(x, r.top() + side * 0.68))
        painter.drawPoint(QPointF(x, r.top() + side * 0.84))
    elif shape == "slashed-circle":
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawEllipse(inner)
        painter.drawLine(inner.bottomLeft(), inner.topRight())
    else:  # slashed square
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(inner)
        painter.drawLine(inner.bottomLeft(), inner.topRight())
    painter.restore()


def state_pixmap(state: str, size: int = 12, device_pixel_ratio: float = 1.0) -> QPixmap:
    """The glyph of ``state`` as a transparent pixmap of ``size`` logical pixels."""
    px = max(1, round(size * device_pixel_ratio))
    pix = QPixmap(px, px)
    pix.setDevicePixelRatio(device_pixel_ratio)
    pix.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pix)
    paint_state_glyph(painter, QRectF(0, 0, size, size), state)
    painter.end()
    return pix
