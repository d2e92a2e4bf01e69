"""Benchmark: the installers' sizes and the frozen app's start-up, beside their budgets and the
same commands run from the development venv (the baseline, measured in the same run).

Needs a build: ``python3 packaging/dev.py package`` (dist/concord/, the .deb, the .tar.xz).
Each timing is the median of 5 warm runs after one warm-up, private HOME, offscreen.

    .venv/bin/python tests/bench/installers.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "dist"
VENV_BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "packaging"))
from package import BUDGETS as SIZE_BUDGETS  # noqa: E402  (the budgets the build enforces)
from package import MB  # noqa: E402

TIME_BUDGETS = {"--version": 0.3, "--self-test": 1.5}


def median_s(cmd: list[str], runs: int, env: dict[str, str]) -> tuple[float, list[float]]:
    """Median wall time of ``runs`` runs after one warm-up; every run must succeed."""
    times = []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=60)
        if i:
            times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def installed_size(deb: Path) -> int:
    out = subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Installed-Size"], capture_output=True, text=True, check=True
    ).stdout
    return int(out) * 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    bundle = DIST / "concord"
    debs = sorted(DIST.glob("concord_*_amd64.deb"))
    archives = sorted(DIST.glob("concord-*-linux-x86_64.tar.xz"))
    if not (bundle / "concord").exists() or not debs or not archives:
        print("installers: no build in dist/ (run `dev.py package`): nothing measured")
        return 0

    print("installers: size (budget)")
    sizes = {
        "deb": debs[-1].stat().st_size,
        "installed": installed_size(debs[-1]),
        "archive": archives[-1].stat().st_size,
    }
    for key, size in sizes.items():
        print(f"  {key:10s} {size / MB:6.1f} MB   (budget {SIZE_BUDGETS[key] / MB:.0f} MB)")

    print(f"start-up: median of {args.runs} warm runs, frozen vs venv (budget)")
    with tempfile.TemporaryDirectory(prefix="cb-") as home:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": home,
            "XDG_RUNTIME_DIR": home,
            "TMPDIR": home,
            "QT_QPA_PLATFORM": "offscreen",
        }
        os.chmod(home, 0o700)
        rows = [
            ("concord --version", "concord", ["--version"], "--version"),
            ("concord-server --version", "concord-server", ["--version"], "--version"),
            ("concord --self-test", "concord", ["--self-test"], "--self-test"),
        ]
        for label, exe, argv, budget in rows:
            frozen, runs = median_s([str(bundle / exe), *argv], args.runs, env)
            venv, _ = median_s([str(VENV_BIN / exe), *argv], args.runs, env)
            print(
                f"  {label:26s} frozen {frozen * 1000:5.0f} ms   venv {venv * 1000:5.0f} ms   "
                f"(budget {TIME_BUDGETS[budget] * 1000:.0f} ms; frozen runs "
                f"{' '.join(f'{t * 1000:.0f}' for t in runs)})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
