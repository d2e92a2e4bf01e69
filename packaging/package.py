"""Build the Linux installers from a clean tree into ``dist/`` (``dev.py package`` runs this):

- ``dist/concord/``: the PyInstaller onedir bundle (``concord``, ``concord-server``,
  ``_internal/``);
- ``dist/concord-<version>-linux-x86_64.tar.xz``: the portable bundle with its libraries;
- ``dist/concord_<version>_amd64.deb``: the bundle under ``/usr/lib/concord`` on Debian's libraries.

Prints the sizes beside their budgets and fails (exit 1) when a build is over one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import debian  # noqa: E402

from desktop.identity import APP_ID, SUMMARY, VERSION  # noqa: E402

T = TypeVar("T")
MB = 1_000_000
BUDGETS = {  # bytes
    "deb": 40 * MB,
    "installed": 130 * MB,
    "archive": 45 * MB,
}
DIST = ROOT / "dist"
BUILD = ROOT / "build"


def freeze() -> tuple[Path, list[str]]:
    """PyInstaller with ``packaging/concord.spec``; the bundle and the host libraries in it."""
    shutil.rmtree(DIST / "concord", ignore_errors=True)
    shutil.rmtree(BUILD / "pyinstaller", ignore_errors=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--clean",
            "--log-level",
            "WARN",
            "--distpath",
            str(DIST),
            "--workpath",
            str(BUILD / "pyinstaller"),
            str(HERE / "concord.spec"),
        ],
        check=True,
        cwd=ROOT,
    )
    manifest = BUILD / "pyinstaller" / "concord" / "host-libs.txt"
    return DIST / "concord", sorted(set(manifest.read_text(encoding="utf-8").split()))


def archive(bundle: Path) -> Path:
    """The portable ``.tar.xz``: the bundle plus the desktop files, in ``concord-<version>/``."""
    out = DIST / f"concord-{VERSION}-linux-x86_64.tar.xz"
    top = f"concord-{VERSION}"
    stage = BUILD / "archive" / top
    shutil.rmtree(stage.parent, ignore_errors=True)
    shutil.copytree(bundle, stage, symlinks=True)
    linux = HERE / "linux"
    share = stage / "share"  # laid out as under /usr/share, for copying into ~/.local/share
    for folder, name in (
        ("applications", f"{APP_ID}.desktop"),
        ("metainfo", f"{APP_ID}.metainfo.xml"),
    ):
        (share / folder).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(linux / name, share / folder / name)
    for icon in (linux / "icons").rglob("*"):
        if icon.is_file():
            size = icon.parent.name if icon.suffix == ".png" else "scalable"
            dest = share / "icons" / "hicolor" / size / "apps" / icon.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(icon, dest)
    shutil.copyfile(ROOT / "LICENSE", stage / "LICENSE")
    shutil.copyfile(linux / "copyright", stage / "COPYRIGHT")
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0")) or int(time.time())

    def normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mtime = epoch
        return info

    # xz preset 9 with the 64 MiB dictionary: Qt's libraries repeat across files far apart.
    tmp = out.with_suffix(".tmp")
    with tarfile.open(tmp, "w:xz", preset=9) as tar:
        tar.add(stage, arcname=top, filter=normalise)
    tmp.replace(out)
    return out


def deb(bundle: Path, host_libs: list[str]) -> tuple[Path, int, list[str]]:
    """The ``.deb``; its path, installed size in bytes and ``Depends``."""
    root = BUILD / "deb" / "root"
    debian.stage(bundle, host_libs, root, APP_ID)
    (root / "DEBIAN").mkdir()
    debian.write_changelog(root, VERSION)
    debian.normalise_modes(root)
    depends = debian.shlib_depends(root, BUILD / "deb" / "shlibdeps")
    installed = debian.write_control(root, VERSION, depends, SUMMARY)
    out = DIST / f"concord_{VERSION}_amd64.deb"
    debian.build(root, out)
    return out, installed, depends


def _timed(fn: Callable[..., T], *args: Any) -> tuple[T, float]:
    t0 = time.monotonic()
    return fn(*args), time.monotonic() - t0


def main() -> int:
    if not sys.platform.startswith("linux"):
        sys.exit("dev.py package builds the Linux installers; see .github/workflows/release.yml")
    DIST.mkdir(exist_ok=True)
    t0 = time.monotonic()
    bundle, host_libs = freeze()
    t_freeze = time.monotonic() - t0
    # The archive's xz (which releases the GIL) and the .deb's run side by side: 2 cores.
    with ThreadPoolExecutor(max_workers=1) as pool:
        tar_job = pool.submit(_timed, archive, bundle)
        (deb_path, installed, depends), t_deb = _timed(deb, bundle, host_libs)
        tar_path, t_archive = tar_job.result()
    bundle_size = sum(
        p.stat().st_size for p in bundle.rglob("*") if p.is_file() and not p.is_symlink()
    )

    print(
        f"\nConcord {VERSION} packages (built in {time.monotonic() - t0:.0f} s: "
        f"freeze {t_freeze:.0f} s, archive {t_archive:.0f} s, deb {t_deb:.0f} s)"
    )
    print(
        f"  bundle {bundle.relative_to(ROOT)}/: {bundle_size / MB:.1f} MB, "
        f"{len(host_libs)} host libraries bundled"
    )
    rows = [
        ("deb", deb_path.name, deb_path.stat().st_size),
        ("installed", "installed size of the .deb", installed),
        ("archive", tar_path.name, tar_path.stat().st_size),
    ]
    over = []
    for key, label, size in rows:
        budget = BUDGETS[key]
        verdict = "ok" if size <= budget else "OVER BUDGET"
        print(f"  {label}: {size / MB:.1f} MB (budget {budget / MB:.0f} MB) {verdict}")
        if size > budget:
            over.append(label)
    print(f"  Depends: {', '.join(depends)}")
    if over:
        print(f"error: over budget: {', '.join(over)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
