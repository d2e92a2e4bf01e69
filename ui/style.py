"""``ContrastStyle``: Fusion with the two things it gets wrong on a dark palette fixed.

* Fusion outlines check boxes and radio buttons in a colour *darker* than the window, which on a
  dark window is nearly invisible. Here the outline is redrawn in ``ui.theme.ink().outline``
  (3:1 or more against the window and the list background, in both themes).
* Its close icons (dialog Close button, title bars, dock widgets) are black pixmaps, black on
  dark grey. Here they are tinted with the palette's button text colour when painted, so they
  follow a theme switch without being recreated.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, QRectF, QSize, Qt
from PySide6.QtGui import (
    QColor,
    QGuiApplication,
    QIcon,
    QIconEngine,
    QPainter,
    QPalette,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import QProxyStyle, QStyle, QStyleFactory, QStyleOption, QWidget

from ui.theme import ink

_SP = QStyle.StandardPixmap
TINTED = (_SP.SP_DialogCloseButton, _SP.SP_TitleBarCloseButton, _SP.SP_DockWidgetCloseButton)
_PE = QStyle.PrimitiveElement
_BOXES = (_PE.PE_IndicatorCheckBox, _PE.PE_IndicatorItemViewItemCheck)


class TintedIcon(QIconEngine):
    """A monochrome icon painted in the application palette's ButtonText colour."""

    def __init__(self, base: QIcon) -> None:
        super().__init__()
        self.base = base

    def clone(self) -> QIconEngine:
        return TintedIcon(self.base)

    def scaledPixmap(
        self, size: QSize, mode: QIcon.Mode, state: QIcon.State, scale: float
    ) -> QPixmap:
        pix = self.base.pixmap(size, scale, mode, state)
        if pix.isNull():
            return pix
        group = (
            QPalette.ColorGroup.Disabled
            if mode == QIcon.Mode.Disabled
            else QPalette.ColorGroup.Normal
        )
        color = QGuiApplication.palette().color(group, QPalette.ColorRole.ButtonText)
        out = QPixmap(pix.size())
        out.setDevicePixelRatio(pix.devicePixelRatio())
        out.fill(Qt.GlobalColor.transparent)
        p = QPainter(out)
        p.drawPixmap(QPoint(0, 0), pix)
        p.setCompositionMode(QPainter.CompositionMode.CompositionMode_SourceIn)
        p.fillRect(QRect(QPoint(0, 0), pix.size()), color)
        p.end()
        return out

    def pixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State) -> QPixmap:
        return self.scaledPixmap(size, mode, state, 1.0)

    def paint(self, painter: QPainter, rect: QRect, mode: QIcon.Mode, state: QIcon.State) -> None:
        dpr = painter.device().devicePixelRatioF() if painter.device() is not None else 1.0
        painter.drawPixmap(rect, self.scaledPixmap(rect.size(), mode, state, dpr))

    def availableSizes(
        self, mode: QIcon.Mode = QIcon.Mode.Normal, state: QIcon.State = QIcon.State.Off
    ) -> list[QSize]:
        return self.base.availableSizes(mode, state)


class ContrastStyle(QProxyStyle):
    """Fusion, with visible check box/radio outlines and close icons on dark palettes."""

    def __init__(self) -> None:
        super().__init__(QStyleFactory.create("Fusion"))

    def drawPrimitive(
        self,
        element: QStyle.PrimitiveElement,
        option: QStyleOption,
        painter: QPainter,
        widget: QWidget | None = None,
    ) -> None:
        super().drawPrimitive(element, option, painter, widget)
        if element not in (*_BOXES, _PE.PE_IndicatorRadioButton):
            return
        outline = QColor(ink(option.palette).outline)
        if not option.state & QStyle.StateFlag.State_Enabled:
            outline.setAlphaF(0.55)
        if option.state & QStyle.StateFlag.State_HasFocus and (
            option.state & QStyle.StateFlag.State_KeyboardFocusChange
        ):
            outline = ink(option.palette).focus
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(outline, 1.2))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        r = QRectF(option.rect).adjusted(0.6, 0.6, -0.6, -0.6)
        if element == _PE.PE_IndicatorRadioButton:
            painter.drawEllipse(r)
        else:
            painter.drawRoundedRect(r, 1.5, 1.5)
        painter.restore()

    def standardIcon(
        self,
        standard_icon: QStyle.StandardPixmap,
        option: QStyleOption | None = None,
        widget: QWidget | None = None,
    ) -> QIcon:
        icon = super().standardIcon(standard_icon, option, widget)
        if standard_icon in TINTED and not icon.isNull():
            return QIcon(TintedIcon(icon))
        return icon
