#!/usr/bin/env python3
"""Developer entry point that needs nothing but python3: sets up ``.venv`` and acts.

    python3 packaging/dev.py run    # the app, on its embedded server (no set-up, no sign-in)
    python3 packaging/dev.py serve  # the sync server alone on 127.0.0.1:8765
    python3 packaging/dev.py test   # lint, layer contracts, type check, the whole test suite
    python3 packaging/dev.py bench  # the benchmarks under tests/bench/
    python3 packaging/dev.py package  # dist/: the frozen bundle, the .deb and the .tar.xz

Extra arguments go to the tool: ``dev.py test -k bus -x``, ``dev.py run --demo``,
``dev.py serve --port 9000``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("CONCORD_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
# Run by tests/bench/scale.py, which prints their figures side by side.
SCALE_PARTS = {"idle_streams.py", "broadcast.py", "cross_instance.py"}


def _run(*cmd: str | os.PathLike[str], **kw: Any) -> None:
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT, **kw)


def ensure_venv() -> None:
    """Create the venv and (re)install the project with its dev extras when pyproject changes."""
    stamp = VENV / ".concord-installed"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    if not (BIN / "python").exists():
        try:
            venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
        except (subprocess.CalledProcessError, OSError) as exc:
            shutil.rmtree(VENV, ignore_errors=True)
            sys.exit(
                f"could not create a venv ({exc}). On Debian/Ubuntu: "
                "sudo apt-get install python3-venv"
            )
    _run(BIN / "python", "-m", "pip", "install", "-q", "--upgrade", "pip")
    _run(BIN / "python", "-m", "pip", "install", "-q", "-e", ".[dev]")
    stamp.write_text(digest)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"run", "serve", "test", "bench", "package", "setup"}:
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    ensure_venv()
    env = dict(os.environ)
    if command == "setup":
        return 0
    if command == "run":
        os.execve(BIN / "concord", [str(BIN / "concord"), *rest], env)
    if command == "serve":
        os.execve(BIN / "concord-server", [str(BIN / "concord-server"), "serve", *rest], env)
    if command == "package":  # Linux; Windows and macOS: .github/workflows/release.yml
        script = ROOT / "packaging" / "package.py"
        return subprocess.run([str(BIN / "python"), str(script), *rest], cwd=ROOT).returncode
    if command == "bench":
        for script in sorted((ROOT / "tests" / "bench").glob("*.py")):
            if not script.name.startswith("_") and script.name not in SCALE_PARTS:
                _run(BIN / "python", script, *rest)
        return 0
    _run(BIN / "ruff", "check", ".")
    _run(BIN / "lint-imports")
    _run(BIN / "mypy")  # what it checks and how strictly: [tool.mypy] in pyproject.toml
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    return subprocess.run(
        [str(BIN / "python"), "-m", "pytest", *rest], cwd=ROOT, env=env, check=False
    ).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
