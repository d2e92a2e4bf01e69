"""packaging/linux/: the .desktop file and the AppStream metainfo pass their validators
(desktop-file-validate, appstreamcli; Debian: desktop-file-utils appstream) and agree with
desktop.identity. Without the tools the validations skip, except under CI=true, where they fail."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from desktop.app import parse_args
from desktop.identity import APP_ID, APP_NAME, ICON_SIZES, SUMMARY, VERSION

LINUX = Path(__file__).resolve().parents[2] / "packaging" / "linux"
DESKTOP = LINUX / f"{APP_ID}.desktop"
METAINFO = LINUX / f"{APP_ID}.metainfo.xml"


def tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian: apt-get install {package})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def test_the_desktop_file_validates() -> None:
    proc = subprocess.run(
        [tool("desktop-file-validate", "desktop-file-utils"), str(DESKTOP)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "error" not in proc.stdout and "warning" not in proc.stdout, proc.stdout


def test_the_metainfo_validates() -> None:
    proc = subprocess.run(
        [tool("appstreamcli", "appstream"), "validate", "--no-net", str(METAINFO)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_desktop_file_agrees_with_the_app() -> None:
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    entry.read(DESKTOP, encoding="utf-8")
    main = entry["Desktop Entry"]
    assert (main["Name"], main["Comment"], main["Icon"]) == (APP_NAME, SUMMARY, APP_ID)
    assert main["Exec"] == "concord"  # no %U: the app opens no files or URLs
    assert main["StartupWMClass"] == APP_NAME  # Qt's WM_CLASS class is the applicationName
    assert main["Categories"] == "Network;InstantMessaging;Chat;"
    assert main["Actions"] == "new-window;"
    action = entry["Desktop Action new-window"]
    assert (action["Name"], action["Exec"]) == ("New Window", "concord --new-window")
    assert parse_args(action["Exec"].split()[1:]).new_window


def test_the_metainfo_agrees_with_the_app() -> None:
    root = ET.parse(METAINFO).getroot()
    assert root.get("type") == "desktop-application"
    assert root.findtext("id") == APP_ID
    assert root.findtext("name") == APP_NAME and root.findtext("summary") == SUMMARY
    assert root.findtext("project_license") == "MIT"
    assert root.findtext("launchable[@type='desktop-id']") == DESKTOP.name
    assert root.findtext("provides/binary") == "concord"
    versions = [r.get("version") for r in root.iterfind("releases/release")]
    assert versions and versions[0] == VERSION, "the newest release comes first"


def test_the_hicolor_icons_are_there() -> None:
    icons = LINUX / "icons"
    assert (icons / f"{APP_ID}.svg").is_file()
    for size in ICON_SIZES:
        assert (icons / f"{size}x{size}" / f"{APP_ID}.png").is_file()
