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
import portable  # noqa: E402

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


def source_date_epoch() -> int:
    """The build's timestamp: $SOURCE_DATE_EPOCH, else the last commit's, so that the same
    commit gives the same dates in the packages."""
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return int(os.environ["SOURCE_DATE_EPOCH"])
    out = subprocess.run(
        ["git", "log", "-1", "--format=%ct"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    return int(out) if out.isdigit() else int(time.time())


def python_license() -> Path:
    """The licence of the Python the bundle froze (shipped with it)."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return Path(sys.base_prefix) / "lib" / version / "LICENSE.txt"


def archive(bundle: Path, host_libs: list[str], epoch: int) -> Path:
    """The portable ``.tar.xz``: ``concord-<version>/`` (see ``portable.py``)."""
    out = DIST / f"concord-{VERSION}-linux-x86_64.tar.xz"
    stage = BUILD / "archive" / f"concord-{VERSION}"
    portable.stage(bundle, stage, APP_ID, python_license())
    portable.add_host_licenses(stage, host_libs)
    portable.write(stage, out, epoch)
    return out


def over_budget(sizes: dict[str, int]) -> list[str]:
    """The budgets (keys of ``BUDGETS``) that ``sizes`` (bytes) exceed."""
    return [key for key, size in sizes.items() if size > BUDGETS[key]]


def deb(bundle: Path, host_libs: list[str], epoch: int) -> tuple[Path, int, list[str]]:
    """The ``.deb``; its path, installed size in bytes and ``Depends``."""
    root = BUILD / "deb" / "root"
    debian.stage(bundle, host_libs, root, APP_ID)
    (root / "DEBIAN").mkdir()
    shutil.copyfile(python_license(), root / "usr/share/doc/concord/Python-LICENSE.txt")
    debian.write_changelog(root, VERSION, epoch)
    debian.normalise(root, epoch)
    depends = debian.shlib_depends(root, BUILD / "deb" / "shlibdeps")
    installed = debian.write_control(root, VERSION, depends, SUMMARY)
    out = DIST / f"concord_{VERSION}_amd64.deb"
    debian.build(root, out, epoch)
    return out, installed, depends


def _timed(fn: Callable[..., T], *args: Any) -> tuple[T, float]:
    t0 = time.monotonic()
    return fn(*args), time.monotonic() - t0


def main() -> int:
    if not sys.platform.startswith("linux"):
        sys.exit("dev.py package builds the Linux installers; see .github/workflows/release.yml")
    DIST.mkdir(exist_ok=True)
    t0 = time.monotonic()
    epoch = source_date_epoch()
    bundle, host_libs = freeze()
    t_freeze = time.monotonic() - t0
    # The archive's xz (which releases the GIL) and the .deb's run side by side: 2 cores.
    with ThreadPoolExecutor(max_workers=1) as pool:
        tar_job = pool.submit(_timed, archive, bundle, host_libs, epoch)
        (deb_path, installed, depends), t_deb = _timed(deb, bundle, host_libs, epoch)
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
    sizes = {
        "deb": deb_path.stat().st_size,
        "installed": installed,
        "archive": tar_path.stat().st_size,
    }
    labels = {
        "deb": deb_path.name,
        "installed": "installed size of the .deb",
        "archive": tar_path.name,
    }
    over = over_budget(sizes)
    for key, size in sizes.items():
        verdict = "OVER BUDGET" if key in over else "ok"
        print(f"  {labels[key]}: {size / MB:.1f} MB (budget {BUDGETS[key] / MB:.0f} MB) {verdict}")
    print(f"  Depends: {', '.join(depends)}")
    if over:
        print(f"error: over budget: {', '.join(labels[k] for k in over)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
