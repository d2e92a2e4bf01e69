"""The Linux packaging scripts: shellcheck-clean, the size budgets enforced, and the portable
archive's ``install.sh`` adding Concord to a user's menu and taking it out again."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"
APP_ID = "io.github.concordchat.Concord"
SCRIPTS = [
    ROOT / ".ci" / "run",
    PACKAGING / "smoke.sh",
    *sorted((PACKAGING / "smoke").glob("*.sh")),
    PACKAGING / "install_check.sh",
    PACKAGING / "linux" / "install-user.sh",
]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_shell_scripts_are_shellcheck_clean(script: Path) -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is not installed (Debian: apt-get install shellcheck)"
    result = subprocess.run(
        [shellcheck, "-x", str(script)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_package_over_its_budget_fails_the_build() -> None:
    sys.path.insert(0, str(PACKAGING))
    spec = importlib.util.spec_from_file_location("package", PACKAGING / "package.py")
    assert spec is not None and spec.loader is not None
    package = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(package)
    mb = package.MB
    assert package.over_budget({"deb": 40 * mb, "installed": 130 * mb, "archive": 45 * mb}) == []
    assert package.over_budget({"deb": 40 * mb + 1, "installed": 1, "archive": 46 * mb}) == [
        "deb",
        "archive",
    ]


def test_install_sh_adds_the_menu_entry_and_removes_it(tmp_path: Path) -> None:
    folder = tmp_path / "my apps" / "concord-9.9"  # a space: Exec must be quoted
    share = folder / "share"
    (share / "applications").mkdir(parents=True)
    (share / "metainfo").mkdir()
    shutil.copy(PACKAGING / "linux" / f"{APP_ID}.desktop", share / "applications")
    shutil.copy(PACKAGING / "linux" / f"{APP_ID}.metainfo.xml", share / "metainfo")
    for size in ("16x16", "256x256"):
        icons = share / "icons" / "hicolor" / size / "apps"
        icons.mkdir(parents=True)
        shutil.copy(PACKAGING / "linux" / "icons" / size / f"{APP_ID}.png", icons)
    for exe in ("concord", "concord-server"):
        (folder / exe).write_text("#!/bin/sh\n")
        (folder / exe).chmod(0o755)
    shutil.copy(PACKAGING / "linux" / "install-user.sh", folder / "install.sh")
    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(home)}

    subprocess.run([folder / "install.sh"], env=env, check=True, capture_output=True)
    data = home / ".local" / "share"
    entry = data / "applications" / f"{APP_ID}.desktop"
    assert f'Exec="{folder}/concord"\n' in entry.read_text()
    assert "Exec=concord --new-window" not in entry.read_text()  # the action runs it too
    validate = subprocess.run(
        ["desktop-file-validate", str(entry)], capture_output=True, text=True, check=False
    )
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert (home / ".local" / "bin" / "concord").resolve() == folder / "concord"
    assert (data / "icons" / "hicolor" / "256x256" / "apps" / f"{APP_ID}.png").is_file()

    subprocess.run([folder / "install.sh", "--remove"], env=env, check=True, capture_output=True)
    left = [
        p
        for p in home.rglob("*")
        if (p.is_file() or p.is_symlink()) and not p.name.endswith(".cache")  # desktop caches
    ]
    assert left == [], left
