"""The Debian package: stage the bundle under ``/usr/lib/concord`` with the desktop files, compute
``Depends`` with ``dpkg-shlibdeps`` over every ELF, and build with ``dpkg-deb --root-owner-group``.

The .deb takes from the system every library the build host's system gave the bundle (the list
``concord.spec`` writes), so those come from Debian's packages and get Debian's security updates;
the libraries that came with Python's wheels (Qt, ICU, libpython) stay in the bundle.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from email.utils import formatdate
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINUX_FILES = ROOT / "packaging" / "linux"
MAINTAINER = "The Concord developers <concord@users.noreply.github.com>"
HOMEPAGE = "https://github.com/concordchat/concord"
# What Qt's xcb platform plugin loads on X11 (most are DT_NEEDED and so found by dpkg-shlibdeps;
# listed so that a change in how Qt links them can never leave X11 users without a window).
QT_XCB_NEEDS = (
    "libxcb-cursor0",
    "libxcb-icccm4",
    "libxcb-image0",
    "libxcb-keysyms1",
    "libxcb-randr0",
    "libxcb-render-util0",
    "libxcb-shape0",
    "libxcb-xkb1",
    "libxkbcommon-x11-0",
    "libegl1",
    "libgl1",
    "libfontconfig1",
)
# A Secret Service keyring keeps the sign-in across restarts (else: for the session only); the
# colour emoji font draws emoji in messages.
RECOMMENDS = "gnome-keyring | keepassxc | kwalletmanager, fonts-noto-color-emoji"


def is_elf(path: Path) -> bool:
    """True for a regular file that starts with the ELF magic."""
    if path.is_symlink() or not path.is_file():
        return False
    with path.open("rb") as f:
        return f.read(4) == b"\x7fELF"


def stage(bundle: Path, host_libs: Iterable[str], root: Path, app_id: str) -> None:
    """Lay out the package's files under ``root`` (a fresh directory): the bundle at
    ``usr/lib/concord`` without the host libraries, /usr/bin links, desktop files, docs."""
    shutil.rmtree(root, ignore_errors=True)
    home = root / "usr" / "lib" / "concord"
    shutil.copytree(bundle, home, symlinks=True)
    internal = home / "_internal"
    for name in set(host_libs):
        target = internal / name
        if target.exists() or target.is_symlink():
            target.unlink()
    (root / "usr" / "bin").mkdir(parents=True)
    for exe in ("concord", "concord-server"):
        (root / "usr" / "bin" / exe).symlink_to(f"../lib/concord/{exe}")
    share = root / "usr" / "share"
    _copy(LINUX_FILES / f"{app_id}.desktop", share / "applications" / f"{app_id}.desktop")
    _copy(LINUX_FILES / f"{app_id}.metainfo.xml", share / "metainfo" / f"{app_id}.metainfo.xml")
    icons = LINUX_FILES / "icons"
    _copy(
        icons / f"{app_id}.svg", share / "icons" / "hicolor" / "scalable" / "apps" / f"{app_id}.svg"
    )
    for size_dir in sorted(p for p in icons.iterdir() if p.is_dir()):
        _copy(
            size_dir / f"{app_id}.png",
            share / "icons" / "hicolor" / size_dir.name / "apps" / f"{app_id}.png",
        )
    doc = share / "doc" / "concord"
    _copy(LINUX_FILES / "copyright", doc / "copyright")


def _copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)


def write_changelog(root: Path, version: str, epoch: int) -> None:
    """``changelog.gz`` (Debian policy 12.7), reproducible: dated ``epoch``, no gzip timestamp."""
    text = (
        f"concord ({version}) unstable; urgency=medium\n\n"
        f"  * Concord {version}: see {HOMEPAGE}/releases\n\n"
        f" -- {MAINTAINER}  {formatdate(epoch, usegmt=False).replace('-0000', '+0000')}\n"
    )
    path = root / "usr" / "share" / "doc" / "concord" / "changelog.gz"
    path.write_bytes(gzip.compress(text.encode(), compresslevel=9, mtime=0))


def normalise(root: Path, epoch: int) -> None:
    """Modes as Debian policy wants them (directories and executables 0755; shared libraries,
    Python extension modules included, and other files 0644) and every date clamped to
    ``epoch``, so the same tree gives the same package."""
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            path = Path(dirpath) / name
            if path.is_symlink():
                continue
            library = name.endswith(".so") or ".so." in name
            executable = not library and (path.stat().st_mode & 0o111 or is_elf(path))
            os.chmod(path, 0o755 if executable else 0o644)
        dirnames.sort()
    for path in [root, *root.rglob("*")]:
        if path.lstat().st_mtime > epoch:
            os.utime(path, (epoch, epoch), follow_symlinks=False)


def shlib_depends(root: Path, work: Path) -> list[str]:
    """``dpkg-shlibdeps`` over every ELF under ``root``: the system packages they need."""
    tree = work / "debian" / "concord"
    shutil.rmtree(work, ignore_errors=True)
    tree.parent.mkdir(parents=True)
    # dpkg-shlibdeps wants a debian/ source tree with the package built under debian/<name>/.
    tree.symlink_to(root.resolve(), target_is_directory=True)
    (work / "debian" / "control").write_text(
        "Source: concord\n\nPackage: concord\nArchitecture: any\n", encoding="utf-8"
    )
    elfs = sorted(str(p.relative_to(root)) for p in root.rglob("*") if is_elf(p))
    private = sorted({str((tree / p).parent) for p in elfs if p.endswith((".so",)) or ".so." in p})
    result = subprocess.run(
        [
            "dpkg-shlibdeps",
            "-O",
            "--warnings=0",
            *(f"-l{d}" for d in private),
            *(f"debian/concord/{p}" for p in elfs),
        ],
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"dpkg-shlibdeps failed:\n{result.stderr}")
    match = re.search(r"^shlibs:Depends=(.*)$", result.stdout, re.MULTILINE)
    if match is None:
        raise SystemExit(f"dpkg-shlibdeps printed no Depends:\n{result.stdout}{result.stderr}")
    depends = [d.strip() for d in match.group(1).split(",") if d.strip()]
    named = {re.split(r"[ (]", d, maxsplit=1)[0] for d in depends}
    depends += [pkg for pkg in QT_XCB_NEEDS if pkg not in named]
    print(f"dpkg-shlibdeps: {len(elfs)} ELF files checked")
    return depends


def write_control(root: Path, version: str, depends: list[str], summary: str) -> int:
    """``DEBIAN/control`` and ``DEBIAN/md5sums``; returns the installed size in bytes."""
    files = sorted(
        p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and "DEBIAN" not in p.parts
    )
    size = sum(p.stat().st_size for p in files)
    debian = root / "DEBIAN"
    debian.mkdir(exist_ok=True)
    (debian / "md5sums").write_text(
        "".join(
            f"{hashlib.md5(p.read_bytes()).hexdigest()}  {p.relative_to(root)}\n" for p in files
        ),
        encoding="utf-8",
    )
    (debian / "control").write_text(
        f"""Package: concord
Version: {version}
Architecture: amd64
Maintainer: {MAINTAINER}
Installed-Size: {(size + 1023) // 1024}
Depends: {", ".join(depends)}
Recommends: {RECOMMENDS}
Section: net
Priority: optional
Homepage: {HOMEPAGE}
Description: {summary}
 Concord is a desktop messenger for people who live in many windows and on
 several devices: every window and every device shows the same conversations
 within milliseconds, and nothing typed is lost when the network drops.
 .
 This package holds the app (concord) and its sync server (concord-server).
""",
        encoding="utf-8",
    )
    for path in (debian / "md5sums", debian / "control"):
        os.chmod(path, 0o644)
    return size


def build(root: Path, out: Path, epoch: int) -> None:
    """``dpkg-deb --root-owner-group --build`` (xz): every file owned by root:root."""
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zxz", "-z9", "--build", str(root), str(out)],
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "SOURCE_DATE_EPOCH": str(epoch)},
    )
