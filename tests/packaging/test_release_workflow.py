"""The release workflow (.github/workflows/release.yml) and the Windows and macOS packaging files.

actionlint passes on the workflow, with shellcheck checking every bash ``run:`` block, and
shellcheck passes on the macOS scripts; both tools are required (no skip: a missing tool fails).
Then the structural facts a release depends on: the four platforms (and no retired runner), a
smoke test of every build both as built and as installed, least-privilege permissions, the app id
and the version flowing from one place each (desktop.identity.APP_ID, server.__version__) into the
installer script, the spec and the smoke tests.

actionlint: any build of it on PATH or beside this Python (pip puts a package's binary there).
shellcheck: Debian ``apt-get install shellcheck``.
"""

from __future__ import annotations

import os
import plistlib
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from desktop.identity import APP_ID, VERSION
from server import __version__

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"
SPEC = ROOT / "packaging" / "concord.spec"
WINDOWS = ROOT / "packaging" / "windows"
MACOS = ROOT / "packaging" / "macos"
ISS = WINDOWS / "concord.iss"

BUILD_JOBS = ("linux", "windows", "macos")
RUNNERS = {
    "linux": ["ubuntu-24.04"],
    "windows": ["windows-2022"],
    "macos": ["macos-14", "macos-15-intel"],  # arm64, x86_64
}


def tool(name: str, how: str) -> str:
    """The tool's path: beside this interpreter (a venv's bin/) or on PATH; fail if absent."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    path = shutil.which(name, path=search)
    if path is None:
        pytest.fail(f"{name} is not installed ({how})")
    return path


def shellcheck() -> str:
    return tool("shellcheck", "Debian: apt-get install shellcheck")


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` key as True
    assert isinstance(on, dict), f"unexpected triggers: {on!r}"
    return on


def steps(workflow: dict[str, Any], job: str) -> list[dict[str, Any]]:
    return workflow["jobs"][job]["steps"]


def runs(workflow: dict[str, Any], job: str) -> list[str]:
    """Each step's ``run:`` script (empty for ``uses:`` steps), in order."""
    return [str(step.get("run", "")) for step in steps(workflow, job)]


def index_of(scripts: list[str], needle: str, job: str) -> int:
    found = [i for i, script in enumerate(scripts) if needle in script]
    assert found, f"job {job!r} has no step running {needle!r}"
    return found[0]


def runners_of(job: dict[str, Any]) -> list[str]:
    runs_on = job["runs-on"]
    match = re.fullmatch(r"\$\{\{\s*matrix\.(\w+)\s*\}\}", str(runs_on))
    if match is None:
        return [str(runs_on)]
    matrix = job["strategy"]["matrix"]
    key = match.group(1)
    return [str(entry[key]) for entry in matrix.get("include", [])] + [
        str(value) for value in matrix.get(key, [])
    ]


# --- linters ---------------------------------------------------------------------------------


def test_actionlint_passes_with_shellcheck() -> None:
    actionlint = tool(
        "actionlint", "pip install the actionlint package named in pyproject's dev extras"
    )
    proc = subprocess.run(
        [
            actionlint,
            "-no-color",
            "-oneline",
            f"-shellcheck={shellcheck()}",
            "-pyflakes=",
            str(WORKFLOW),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"actionlint:\n{proc.stdout}{proc.stderr}"


def test_the_macos_scripts_pass_bash_n_and_shellcheck() -> None:
    scripts = sorted(MACOS.glob("*.sh"))
    assert {path.name for path in scripts} >= {"make_dmg.sh", "sign_and_notarize.sh", "smoke.sh"}
    for script in scripts:
        syntax = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert syntax.returncode == 0, f"{script.name}: {syntax.stderr}"
    proc = subprocess.run(
        [shellcheck(), "--shell=bash", *map(str, scripts)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"shellcheck:\n{proc.stdout}{proc.stderr}"


def test_the_entitlements_are_hardened_runtime_exceptions_only() -> None:
    with (MACOS / "entitlements.plist").open("rb") as f:
        entitlements = plistlib.load(f)
    assert entitlements.get("com.apple.security.cs.allow-unsigned-executable-memory") is True
    for key, value in entitlements.items():  # no App Sandbox keys: the app is not sandboxed
        assert key.startswith("com.apple.security.cs."), key
        assert value is True, key


# --- the workflow's shape --------------------------------------------------------------------


def test_it_runs_on_version_tags_and_by_hand(workflow: dict[str, Any]) -> None:
    on = triggers(workflow)
    assert on["push"] == {"tags": ["v*"]}
    assert "workflow_dispatch" in on
    assert "group" in workflow["concurrency"]
    assert workflow["concurrency"].get("cancel-in-progress") is False  # never half a release


def test_the_matrix_is_the_four_platforms(workflow: dict[str, Any]) -> None:
    jobs = workflow["jobs"]
    assert {job: runners_of(jobs[job]) for job in BUILD_JOBS} == RUNNERS
    container = jobs["linux"]["container"]
    image = container["image"] if isinstance(container, dict) else container
    assert image == "debian:12"
    assert jobs["macos"]["strategy"]["fail-fast"] is False
    archs = [entry["arch"] for entry in jobs["macos"]["strategy"]["matrix"]["include"]]
    assert archs == ["arm64", "x86_64"]
    text = WORKFLOW.read_text(encoding="utf-8")
    assert "macos-13" not in text, "macos-13 runners are retired: use macos-15-intel for x86_64"
    assert "macos-latest" not in text and "windows-latest" not in text  # pinned images only


def test_every_job_has_a_timeout(workflow: dict[str, Any]) -> None:
    for name, job in workflow["jobs"].items():
        assert isinstance(job.get("timeout-minutes"), int), f"job {name!r} has no timeout"


def test_only_the_release_job_may_write(workflow: dict[str, Any]) -> None:
    assert workflow["permissions"] == {"contents": "read"}
    for name, job in workflow["jobs"].items():
        if name == "release":
            assert job["permissions"] == {"contents": "write"}
        else:
            assert "write" not in str(job.get("permissions", {})), name
    release = workflow["jobs"]["release"]
    assert "refs/tags/v" in release["if"]
    assert set(release["needs"]) >= {"version", *BUILD_JOBS}


def test_actions_are_pinned_to_major_versions(workflow: dict[str, Any]) -> None:
    uses = [
        str(step["uses"])
        for job in workflow["jobs"].values()
        for step in job.get("steps", [])
        if "uses" in step
    ]
    assert uses
    for ref in uses:
        assert re.fullmatch(r"actions/[a-z-]+@v\d+", ref), (
            f"{ref}: pin a major version of actions/*"
        )


def test_every_build_is_smoke_tested_as_built_and_as_installed(workflow: dict[str, Any]) -> None:
    # job: (what builds it, smoke of the build, what installs it, smoke of the installed copy)
    expected = {
        "linux": (
            "packaging/dev.py package",
            "packaging/smoke.sh dist/concord",
            "packaging/install_check.sh",  # installs, smokes /usr/bin, purges (checked below)
            "packaging/install_check.sh",
        ),
        "windows": (
            "packaging/concord.spec",
            "smoke.ps1 -Prefix dist/concord",
            "/VERYSILENT",
            "smoke.ps1 -Prefix $env:CONCORD_INSTALL_DIR",
        ),
        "macos": (
            "packaging/concord.spec",
            'packaging/macos/smoke.sh "$DMG"',
            'ditto "$mnt/Concord.app"',
            'packaging/macos/smoke.sh "$CONCORD_INSTALLED_APP"',
        ),
    }
    for job, (build, built_smoke, install, installed_smoke) in expected.items():
        scripts = runs(workflow, job)
        order = [
            index_of(scripts, needle, job)
            for needle in (build, built_smoke, install, installed_smoke)
        ]
        assert order[0] < order[1] < order[2] <= order[3], f"{job}: steps out of order {order}"
        uploads = [
            step for step in steps(workflow, job) if "upload-artifact" in str(step.get("uses"))
        ]
        assert uploads and all(u["with"]["if-no-files-found"] == "error" for u in uploads), job
    # Linux's install check (shared with .ci/run): install, smoke the installed copy, purge.
    check = (ROOT / "packaging" / "install_check.sh").read_text(encoding="utf-8")
    at = 0
    for needle in (
        'apt-get install -y "$deb"',
        "packaging/smoke.sh /usr/bin",
        'purge_all || fail "apt-get purge concord"',
    ):
        at = check.find(needle, at)
        assert at >= 0, f"packaging/install_check.sh: no {needle!r} after the previous step"
    windows = runs(workflow, "windows")
    assert index_of(windows, "unins000.exe", "windows") > index_of(
        windows, "CONCORD_INSTALL_DIR -Exp", "windows"
    )
    macos = runs(workflow, "macos")  # the dmg is smoke-tested once signed and notarized
    assert index_of(macos, "sign_and_notarize.sh dmg", "macos") < index_of(
        macos, 'smoke.sh "$DMG"', "macos"
    )


# --- one app id, one version -----------------------------------------------------------------


def iss_sections() -> dict[str, list[str]]:
    """concord.iss as {section: [lines]}, without comments and preprocessor lines."""
    sections: dict[str, list[str]] = {"": []}
    current = ""
    for raw in ISS.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith((";", "#")):
            continue
        header = re.fullmatch(r"\[(\w+)\]", line)
        if header:
            current = header.group(1)
            sections.setdefault(current, [])
        else:
            sections[current].append(line)
    return sections


def iss_setup() -> dict[str, str]:
    return dict(line.split("=", 1) for line in iss_sections()["Setup"])


def iss_entries(section: str) -> list[dict[str, str]]:
    """An entry section's lines (``Name: "x"; Flags: a b``) as dicts, quotes removed."""
    entries = []
    for line in iss_sections()[section]:
        params = re.findall(r'(\w+):\s*("(?:[^"]|"")*"|[^;]*)', line)
        entries.append({key: value.strip().strip('"') for key, value in params})
    return entries


def test_the_app_id_is_desktop_identity_app_id_everywhere(workflow: dict[str, Any]) -> None:
    icons = iss_entries("Icons")
    assert icons and all(icon["AppUserModelID"] == APP_ID for icon in icons), icons
    assert any(icon["Name"].startswith("{autoprograms}") for icon in icons)  # the Start Menu
    spec = SPEC.read_text(encoding="utf-8")
    assert "from desktop.identity import APP_ID" in spec
    assert re.search(r"bundle_identifier=APP_ID\b", spec)
    ps1 = (WINDOWS / "smoke.ps1").read_text(encoding="utf-8")
    assert re.search(r"^\$AppId = '([^']+)'", ps1, re.M).group(1) == APP_ID  # type: ignore[union-attr]
    sh = (MACOS / "smoke.sh").read_text(encoding="utf-8")
    assert re.search(r"^APP_ID=(\S+)", sh, re.M).group(1) == APP_ID  # type: ignore[union-attr]
    installed = "\n".join(runs(workflow, "windows"))
    assert f"$aumid = '{APP_ID}'" in installed  # the installed shortcut is checked too


def test_the_installer_version_is_the_project_version(workflow: dict[str, Any]) -> None:
    with (ROOT / "pyproject.toml").open("rb") as f:
        declared = tomllib.load(f)["project"]["version"]
    assert VERSION == __version__ == declared

    text = ISS.read_text(encoding="utf-8")
    assert re.search(r"^#ifndef AppVersion\s*\n\s*#error", text, re.M), (
        "AppVersion must be required"
    )
    setup = iss_setup()
    assert setup["AppVersion"] == "{#AppVersion}"
    assert setup["OutputBaseFilename"] == "concord-{#AppVersion}-windows-x64-setup"
    code = "\n".join(line for lines in iss_sections().values() for line in lines)
    assert __version__ not in code  # no version written into the script by hand

    version_job = "\n".join(runs(workflow, "version"))
    assert "server.__version__" in version_job
    assert (
        workflow["jobs"]["version"]["outputs"]["version"] == "${{ steps.version.outputs.version }}"
    )
    windows = workflow["jobs"]["windows"]
    assert windows["env"]["VERSION"] == "${{ needs.version.outputs.version }}"
    iscc = runs(workflow, "windows")[index_of(runs(workflow, "windows"), "concord.iss", "windows")]
    assert '"/DAppVersion=$env:VERSION"' in iscc
    assert "dist\\concord-$env:VERSION-windows-x64-setup.exe" in iscc


def test_the_inno_setup_script_settings() -> None:
    setup = iss_setup()
    assert re.fullmatch(r"\{\{[0-9A-F]{8}(-[0-9A-F]{4}){3}-[0-9A-F]{12}\}", setup["AppId"])
    assert setup["DefaultDirName"] == "{autopf}\\Concord"
    assert "dialog" in setup["PrivilegesRequiredOverridesAllowed"].split()
    assert setup["ArchitecturesAllowed"] == "x64compatible"
    assert setup["ArchitecturesInstallIn64BitMode"] == "x64compatible"
    assert setup["CloseApplications"] == "yes"
    assert setup["OutputDir"] == "{#SourcePath}..\\..\\dist"
    run = iss_entries("Run")
    assert run and {"postinstall", "skipifsilent"} <= set(run[0]["Flags"].split())
    desktop = [icon for icon in iss_entries("Icons") if icon["Name"].startswith("{autodesktop}")]
    assert desktop and desktop[0]["Tasks"] == "desktopicon"
    tasks = iss_entries("Tasks")
    assert tasks and "unchecked" in tasks[0]["Flags"].split()  # the desktop icon is optional
    # Nothing outside {app} is deleted: the user's data (in %LOCALAPPDATA%) outlives uninstalls.
    for entry in iss_entries("UninstallDelete") + iss_entries("InstallDelete"):
        assert entry["Name"].startswith("{app}"), entry


def test_the_workflow_checks_the_installers_uninstall_key() -> None:
    guid = iss_setup()["AppId"][1:]  # "{{...}" in the script is "{...}" in the registry
    text = WORKFLOW.read_text(encoding="utf-8")
    assert f"\\Uninstall\\{guid}_is1" in text


def test_the_smoke_tests_share_their_settings_with_linux() -> None:
    """Windows and macOS read the Linux smoke's variables (larger defaults, said why in each)."""
    ps1 = (WINDOWS / "smoke.ps1").read_text(encoding="utf-8")
    sh = (MACOS / "smoke.sh").read_text(encoding="utf-8")
    linux = (ROOT / "packaging" / "smoke" / "common.sh").read_text(encoding="utf-8")
    for name, default in (
        ("CONCORD_BUDGET_SELFTEST_S", "3"),
        ("CONCORD_BUDGET_VERSION_S", "1"),
        ("CONCORD_SMOKE_SERVER_TIMEOUT_S", "30"),
    ):
        assert re.search(rf"'{name}' {default}(\.0)?\b", ps1), name
        assert re.search(rf"\$\{{{name}:-{default}\}}", sh), name
    for name in ("CONCORD_BUDGET_SELFTEST_S", "CONCORD_BUDGET_VERSION_S", "CONCORD_EXPECT_VERSION"):
        assert name in linux, f"packaging/smoke/common.sh no longer reads {name}"
        assert name in ps1 and name in sh, name
