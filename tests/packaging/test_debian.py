"""The .deb's layout, control file and ``Depends`` (``packaging/debian.py``), built with the real
``dpkg-shlibdeps`` and ``dpkg-deb`` from a small bundle of real ELF files."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "packaging"))
spec = importlib.util.spec_from_file_location("debian", ROOT / "packaging" / "debian.py")
assert spec is not None and spec.loader is not None
debian = importlib.util.module_from_spec(spec)
spec.loader.exec_module(debian)

APP_ID = "io.github.concordchat.Concord"


def _fake_bundle(tmp: Path) -> Path:
    import _ssl

    bundle = tmp / "concord"
    internal = bundle / "_internal"
    internal.mkdir(parents=True)
    shutil.copy("/usr/bin/true", bundle / "concord")  # an ELF executable (libc only)
    shutil.copy("/usr/bin/true", bundle / "concord-server")
    shutil.copy(_ssl.__file__, internal / "_ssl.so")  # needs libssl.so.3 from the system
    (internal / "libssl.so.3").write_bytes(b"\x7fELF host copy")  # a host library: not shipped
    (internal / "data.txt").write_text("x")
    return bundle


EPOCH = 1_780_000_000  # 2026-05-28


def _build(tmp: Path, name: str) -> tuple[Path, int, list[str]]:
    root = tmp / name / "root"
    debian.stage(_fake_bundle(tmp / name), ["libssl.so.3"], root, APP_ID)
    (root / "DEBIAN").mkdir()
    debian.write_changelog(root, "9.8.7", EPOCH)
    debian.normalise(root, EPOCH)
    depends = debian.shlib_depends(root, tmp / name / "work")
    size = debian.write_control(root, "9.8.7", depends, "A summary")
    out = tmp / name / "concord.deb"
    debian.build(root, out, EPOCH)
    return out, size, depends


def test_the_same_tree_gives_the_same_package(tmp_path: Path) -> None:
    first, _, _ = _build(tmp_path, "a")
    second, _, _ = _build(tmp_path, "b")
    assert first.read_bytes() == second.read_bytes()


def test_deb_layout_control_and_depends(tmp_path: Path) -> None:
    out, size, depends = _build(tmp_path, "a")

    names = {d.split(" ", 1)[0] for d in depends}
    assert {"libc6", "libssl3"} <= names  # computed from the ELF files
    assert set(debian.QT_XCB_NEEDS) <= names  # what Qt's xcb platform needs, always

    field = lambda name: subprocess.run(  # noqa: E731
        ["dpkg-deb", "-f", str(out), name], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert field("Package") == "concord"
    assert field("Version") == "9.8.7"
    assert field("Architecture") == "amd64"
    assert int(field("Installed-Size")) == (size + 1023) // 1024
    assert "gnome-keyring" in field("Recommends")
    assert "fonts-noto-color-emoji" in field("Recommends")

    listing = subprocess.run(
        ["dpkg-deb", "-c", str(out)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TZ": "UTC"},
    ).stdout.splitlines()
    paths = {line.split()[5].removeprefix("."): line for line in listing}
    assert all(line.split()[1] == "root/root" for line in listing)  # --root-owner-group
    assert "/usr/lib/concord/_internal/libssl.so.3" not in paths  # taken from the system
    assert paths["/usr/lib/concord/_internal/_ssl.so"].startswith("-rw-r--r--")  # a library
    assert all(" 2026-05-28 " in line for line in listing)  # dated by SOURCE_DATE_EPOCH
    assert paths["/usr/lib/concord/concord"].startswith("-rwxr-xr-x")
    assert paths["/usr/lib/concord/_internal/data.txt"].startswith("-rw-r--r--")
    assert paths["/usr/bin/concord"].endswith("-> ../lib/concord/concord")
    assert paths["/usr/bin/concord-server"].endswith("-> ../lib/concord/concord-server")
    for path in (
        f"/usr/share/applications/{APP_ID}.desktop",
        f"/usr/share/metainfo/{APP_ID}.metainfo.xml",
        f"/usr/share/icons/hicolor/scalable/apps/{APP_ID}.svg",
        f"/usr/share/icons/hicolor/256x256/apps/{APP_ID}.png",
        f"/usr/share/icons/hicolor/16x16/apps/{APP_ID}.png",
        "/usr/share/doc/concord/copyright",
        "/usr/share/doc/concord/changelog.gz",
    ):
        assert path in paths, path
