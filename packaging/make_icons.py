#!/usr/bin/env python3
"""Draw the Concord app icon and write every file made from it (run with the project's venv):

    .venv/bin/python packaging/make_icons.py

* ``packaging/linux/icons/<APP_ID>.svg``               the scalable icon (hicolor ``scalable/apps``)
* ``packaging/linux/icons/<N>x<N>/<APP_ID>.png``       N = 16 … 256 (hicolor ``NxN/apps``)
* ``desktop/resources/icons/<APP_ID>.svg``, ``<APP_ID>-<N>.png``   the same, inside the package

The icon is two overlapping speech bubbles: a teal one behind, the brand blue one in front with
three white dots, a transparent gap between them. The SVG uses only paths, circular arcs and
solid fills (no masks, filters or gradients), so every renderer draws it the same: librsvg, Qt's
QSvgRenderer (Qt 5 and 6), browsers. The PNGs are rendered from the SVG with QSvgRenderer; sizes
of 32 px and less leave the dots out (they would blur into a grey smear).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from desktop.identity import APP_ID, ICON_SIZES  # noqa: E402

BACK = "#23b3a2"  # teal
FRONT = "#3d6fd8"  # the brand blue (the tray glyph's colour until now)
DOTS = "#ffffff"
SMALL = 32  # this size and smaller: no dots

# Geometry on a 256 grid. B: the back bubble's body, F: the front bubble's body, GAP: the
# transparent margin around F that is cut out of B (so H = F grown by GAP).
B = (12, 20, 168, 146, 46)  # x0, y0, x1, y1, corner radius
F = (86, 98, 244, 218, 46)
GAP = 10


def _n(v: float) -> str:
    return f"{v:g}"


def back_bubble() -> str:
    """B minus H, traced clockwise: lines and arcs only. The geometry keeps H's top-left corner
    inside B and B's bottom-right corner inside H, so the cut is H's top edge, its rounded
    corner and its left edge."""
    bx0, by0, bx1, by1, rb = B
    hx0, hy0, rh = F[0] - GAP, F[1] - GAP, F[4] + GAP
    assert hx0 >= bx0 + rb and hx0 + rh <= bx1 and hy0 >= by0 + rb and hy0 + rh <= by1
    d = [
        f"M{_n(bx0 + rb)} {_n(by0)}",
        f"H{_n(bx1 - rb)}",
        f"A{_n(rb)} {_n(rb)} 0 0 1 {_n(bx1)} {_n(by0 + rb)}",
        f"V{_n(hy0)}",
        f"H{_n(hx0 + rh)}",
        f"A{_n(rh)} {_n(rh)} 0 0 0 {_n(hx0)} {_n(hy0 + rh)}",
        f"V{_n(by1)}",
        f"H{_n(bx0 + rb)}",
        f"A{_n(rb)} {_n(rb)} 0 0 1 {_n(bx0)} {_n(by1 - rb)}",
        f"V{_n(by0 + rb)}",
        f"A{_n(rb)} {_n(rb)} 0 0 1 {_n(bx0 + rb)} {_n(by0)}",
        "Z",
    ]
    return "".join(d)


def back_tail() -> str:
    """The back bubble's tail, down and to the left (clear of the gap around F)."""
    bx0, _by0, _bx1, by1, _rb = B
    return (
        f"M{_n(bx0 + 58)} {_n(by1 - 8)}"
        f"Q{_n(bx0 + 50)} {_n(by1 + 28)} {_n(bx0 + 4)} {_n(by1 + 44)}"
        f"Q{_n(bx0 + 24)} {_n(by1 + 14)} {_n(bx0 + 10)} {_n(by1 - 28)}Z"
    )


def front_bubble() -> str:
    x0, y0, x1, y1, r = F
    return (
        f"M{_n(x0 + r)} {_n(y0)}H{_n(x1 - r)}"
        f"A{_n(r)} {_n(r)} 0 0 1 {_n(x1)} {_n(y0 + r)}V{_n(y1 - r)}"
        f"A{_n(r)} {_n(r)} 0 0 1 {_n(x1 - r)} {_n(y1)}H{_n(x0 + r)}"
        f"A{_n(r)} {_n(r)} 0 0 1 {_n(x0)} {_n(y1 - r)}V{_n(y0 + r)}"
        f"A{_n(r)} {_n(r)} 0 0 1 {_n(x0 + r)} {_n(y0)}Z"
    )


def front_tail() -> str:
    """The front bubble's tail, down and to the right."""
    _x0, _y0, x1, y1, _r = F
    return (
        f"M{_n(x1 - 58)} {_n(y1 - 8)}"
        f"Q{_n(x1 - 50)} {_n(y1 + 26)} {_n(x1 - 6)} {_n(y1 + 34)}"
        f"Q{_n(x1 - 22)} {_n(y1 + 12)} {_n(x1 - 10)} {_n(y1 - 28)}Z"
    )


def dots() -> list[tuple[float, float, float]]:
    x0, y0, x1, y1, _r = F
    cx, cy, step, radius = (x0 + x1) / 2, (y0 + y1) / 2, 38, 13
    return [(cx + k * step, cy, radius) for k in (-1, 0, 1)]


def svg(with_dots: bool = True) -> str:
    circles = "".join(
        f'\n  <circle cx="{_n(x)}" cy="{_n(y)}" r="{_n(r)}" fill="{DOTS}"/>' for x, y, r in dots()
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<svg xmlns="http://www.w3.org/2000/svg" version="1.1" '
        'width="256" height="256" viewBox="0 0 256 256">\n'
        "  <title>Concord</title>\n"
        f'  <path d="{back_bubble()}" fill="{BACK}"/>\n'
        f'  <path d="{back_tail()}" fill="{BACK}"/>\n'
        f'  <path d="{front_bubble()}" fill="{FRONT}"/>\n'
        f'  <path d="{front_tail()}" fill="{FRONT}"/>'
        f"{circles if with_dots else ''}\n"
        "</svg>\n"
    )


def render(svg_text: str, size: int) -> bytes:
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(QByteArray(svg_text.encode()))
    assert renderer.isValid(), "QSvgRenderer rejected the SVG"
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(0)
    p = QPainter(image)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(p)
    p.end()
    buf = QBuffer()
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    image.convertToFormat(QImage.Format.Format_ARGB32).save(buf, "PNG")
    return bytes(buf.data())


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    linux = ROOT / "packaging" / "linux" / "icons"
    package = ROOT / "desktop" / "resources" / "icons"
    full, small = svg(True), svg(False)
    written: list[Path] = []

    def write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)

    for folder in (linux, package):
        write(folder / f"{APP_ID}.svg", full.encode())
    for size in ICON_SIZES:
        png = render(small if size <= SMALL else full, size)
        write(linux / f"{size}x{size}" / f"{APP_ID}.png", png)
        write(package / f"{APP_ID}-{size}.png", png)
    for path in written:
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
