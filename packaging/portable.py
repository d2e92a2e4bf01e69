"""The portable archive: the bundle with every library it was built with, the desktop files laid
out for ``~/.local/share``, ``install.sh`` that adds it to the user's app menu, and the licences
of everything inside (the host libraries' Debian copyright files under ``licenses/``)."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from collections.abc import Iterable
from pathlib import Path

HERE = Path(__file__).resolve().parent
LINUX = HERE / "linux"


def stage(bundle: Path, stage_dir: Path, app_id: str, python_license: Path) -> None:
    """Lay out the archive's top folder at ``stage_dir`` (replaced)."""
    shutil.rmtree(stage_dir, ignore_errors=True)
    shutil.copytree(bundle, stage_dir, symlinks=True)
    share = stage_dir / "share"  # as under /usr/share: install.sh copies it to ~/.local/share
    for folder, name in (
        ("applications", f"{app_id}.desktop"),
        ("metainfo", f"{app_id}.metainfo.xml"),
    ):
        (share / folder).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(LINUX / name, share / folder / name)
    for icon in (LINUX / "icons").rglob("*"):
        if icon.is_file():
            size = icon.parent.name if icon.suffix == ".png" else "scalable"
            dest = share / "icons" / "hicolor" / size / "apps" / icon.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(icon, dest)
    shutil.copy(LINUX / "install-user.sh", stage_dir / "install.sh")
    shutil.copyfile(HERE.parent / "LICENSE", stage_dir / "LICENSE")
    shutil.copyfile(LINUX / "copyright", stage_dir / "COPYRIGHT")
    licenses = stage_dir / "licenses"
    licenses.mkdir()
    shutil.copyfile(python_license, licenses / "Python-LICENSE.txt")
    shutil.copyfile("/usr/share/common-licenses/LGPL-3", licenses / "LGPL-3")


def add_host_licenses(stage_dir: Path, host_libs: Iterable[str]) -> list[str]:
    """Copy the Debian copyright file of every package a bundled host library came from into
    ``licenses/``; returns those packages. Fails if a library belongs to no package."""
    packages: set[str] = set()
    for name in sorted(set(host_libs)):
        found = _owner(name)
        if found is None:
            raise SystemExit(f"no Debian package owns the bundled host library {name}")
        packages.add(found)
    for package in sorted(packages):
        src = Path("/usr/share/doc") / package / "copyright"
        if not src.is_file():
            raise SystemExit(f"{package} has no {src}: its licence cannot be shipped")
        shutil.copyfile(src, stage_dir / "licenses" / f"{package}.copyright")
    return sorted(packages)


def _owner(soname: str) -> str | None:
    """The Debian package (without ``:arch``) that installed a library of this name."""
    result = subprocess.run(
        ["dpkg-query", "-S", f"*/{soname}"], capture_output=True, text=True, check=False
    )
    for line in result.stdout.splitlines():
        package, _, path = line.partition(": ")
        if path.startswith(("/lib/", "/usr/lib/")) and "," not in package:
            return package.split(":", 1)[0]
    return None


def write(stage_dir: Path, out: Path, epoch: int) -> None:
    """``out`` (.tar.xz) holding ``stage_dir`` as its top folder, owned by root, dated ``epoch``.
    xz preset 9 (a 64 MiB dictionary): Qt's libraries repeat across files far apart."""

    def normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mtime = min(info.mtime, epoch)
        return info

    tmp = out.with_suffix(".tmp")
    with tarfile.open(tmp, "w:xz", preset=9) as tar:
        tar.add(stage_dir, arcname=stage_dir.name, filter=normalise)
    tmp.replace(out)
