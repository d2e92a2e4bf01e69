"""What goes into the frozen bundle: used by ``concord.spec`` (build time only, never shipped).

Two ideas live here: which Python modules and Qt plugins the app never loads (left out), and the
``DT_NEEDED`` walk that drops the host libraries only those left-out plugins pulled in.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

LINUX = sys.platform.startswith("linux")
STRIP = LINUX  # strip=True on macOS breaks code signatures; Windows has nothing to strip

# Standard-library and third-party modules nothing in Concord imports at run time.
_NEVER = [
    "tkinter",
    "_tkinter",
    "turtledemo",
    "idlelib",
    "lib2to3",
    "pydoc_data",
    "test",
    "unittest",
    "xmlrpc",
    "ensurepip",
    "venv",
    "distutils",
    "setuptools",
    "pip",
    "watchfiles",  # uvicorn's --reload only
    "IPython",
    "numpy",
    "pytest",
    "hypothesis",
    "readline",  # an interactive prompt's line editing (and libreadline)
    "yaml",  # uvicorn's optional YAML logging config
    "dotenv",  # uvicorn's --env-file
    "websockets",  # uvicorn's WebSocket support: the sync protocol is HTTP and SSE only
    "wsproto",
    # httpx's command-line client (httpx._main) and what only it imports: 7 MB in each executable
    "rich",
    "pygments",
    "markdown_it",
    "mdurl",
    # concord[scale] (PostgreSQL and Redis for several server instances): never in the bundles,
    # whose server runs on SQLite; `--database postgresql://` there says to install the extra
    "psycopg",
    "psycopg_binary",
    "psycopg_c",
    "psycopg_pool",
    "redis",
    "hiredis",
    "server.storage.postgres",
]
EXCLUDES_APP = _NEVER
# The server has no GUI: none of Qt, and none of the client's layers.
EXCLUDES_SERVER = [*_NEVER, "PySide6", "shiboken6", "qasync", "ui", "desktop", "keyring"]

# Qt plugin folders and the plugins kept in each; a folder not named here is left out whole.
_QT_PLUGINS: dict[str, set[str] | None] = {  # None: every plugin in the folder
    "platforms": {
        "libqxcb.so",  # X11
        "libqwayland.so",  # Wayland
        "libqoffscreen.so",  # --self-test, headless CI
        "libqminimal.so",
    },
    "platformthemes": {"libqxdgdesktopportal.so"},  # portal file dialogs; gtk3 theme left out
    "platforminputcontexts": {  # dead keys and input methods (CJK users): compose and IBus
        "libcomposeplatforminputcontextplugin.so",
        "libibusplatforminputcontextplugin.so",
    },
    "imageformats": {"libqgif.so", "libqico.so", "libqjpeg.so", "libqsvg.so", "libqwebp.so"},
    "iconengines": None,  # SVG icon themes
    "networkinformation": {"libqnetworkmanager.so", "libqglib.so"},  # desktop/app.py
    "xcbglintegrations": None,
    "wayland-decoration-client": None,  # window decorations on GNOME's Wayland
    "wayland-shell-integration": {"libxdg-shell.so"},
    "wayland-graphics-integration-client": {"libqt-plugin-wayland-egl.so"},
}
_PLUGIN_RE = re.compile(r"PySide6[/\\]Qt[/\\]plugins[/\\]([^/\\]+)[/\\]([^/\\]+)$")
_TRANSLATIONS_RE = re.compile(r"PySide6[/\\]Qt[/\\]translations[/\\]")


def plugin_kept(dest: str) -> bool:
    match = _PLUGIN_RE.search(dest)
    if match is None or not LINUX:  # the lists name Linux plugins; macOS/Windows keep them all
        return True
    folder, name = match.groups()
    if folder not in _QT_PLUGINS:
        return False
    keep = _QT_PLUGINS[folder]
    return keep is None or name in keep


def needed(path: str) -> list[str]:
    """The ``DT_NEEDED`` sonames of an ELF file (readelf from binutils, which PyInstaller's
    ``strip`` needs anyway)."""
    out = subprocess.run(
        ["readelf", "-d", "-W", path], capture_output=True, text=True, check=True
    ).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


_SYSTEM_LIB_DIRS = ("/lib/", "/usr/lib/", "/lib64/", "/usr/lib64/")


def is_host_library(src: str) -> bool:
    """A shared library the build host's distribution installed (so a .deb can depend on its
    package), as opposed to one that came with Python or a wheel. Python's own libpython stays
    in the bundle even when it is the system's (Debian's python3), and so does anything under a
    ``site-packages``/``dist-packages`` folder."""
    path = os.path.realpath(src)
    if not path.startswith(_SYSTEM_LIB_DIRS) and not src.startswith(_SYSTEM_LIB_DIRS):
        return False
    parts = Path(path).parts
    if any(part.startswith("python3") or part.endswith("-packages") for part in parts):
        return False
    return not Path(path).name.startswith("libpython")


def trim(analysis: Any, host_libs: Path | None = None) -> None:
    """Leave out unused Qt plugins and translations, then (Linux) every bundled library that no
    kept extension module, plugin or library needs. Edits the Analysis in place.

    ``host_libs``: append the bundled libraries that came from the build host's system
    directories to this file (one name per line), so the .deb can take them from the system."""
    analysis.datas[:] = [entry for entry in analysis.datas if not _TRANSLATIONS_RE.search(entry[0])]
    analysis.binaries[:] = [entry for entry in analysis.binaries if plugin_kept(entry[0])]
    if not LINUX:
        return
    by_name = {Path(dest).name: (dest, src) for dest, src, _kind in analysis.binaries}
    roots = [
        dest
        for dest, _src, kind in analysis.binaries
        if kind == "EXTENSION" or _PLUGIN_RE.search(dest) or Path(dest).name.startswith("libpython")
    ]
    reached: set[str] = set()
    todo = [Path(dest).name for dest in roots]
    while todo:
        name = todo.pop()
        if name in reached or name not in by_name:
            continue
        reached.add(name)
        todo.extend(needed(by_name[name][1]))
    dropped = sorted(name for name in by_name if name not in reached)
    analysis.binaries[:] = [entry for entry in analysis.binaries if Path(entry[0]).name in reached]
    kept = {dest for dest, _src, kind in analysis.binaries if kind != "SYMLINK"}
    for toc in (analysis.binaries, analysis.datas):  # symlinks to what was dropped go too
        toc[:] = [entry for entry in toc if entry[2] != "SYMLINK" or _link_target(entry) in kept]
    if host_libs is not None:
        host = sorted(
            Path(dest).name
            for dest, src, kind in analysis.binaries
            if kind == "BINARY" and is_host_library(src)
        )
        host_libs.parent.mkdir(parents=True, exist_ok=True)
        with host_libs.open("a", encoding="utf-8") as out:
            out.writelines(f"{name}\n" for name in host)
    if dropped:
        print(f"bundle_plan: dropped {len(dropped)} libraries nothing kept needs: {dropped}")


def _link_target(entry: tuple[str, str, str]) -> str:
    dest, target, _kind = entry
    return os.path.normpath(os.path.join(os.path.dirname(dest), target))


def icon_for_platform(root: Path) -> str | None:
    """The executable's icon: PyInstaller converts the PNG to .ico/.icns (needs Pillow)."""
    if LINUX:
        return None  # Linux takes the icon from the .desktop file and the icon theme
    return str(root / "desktop" / "resources" / "icons" / "io.github.concordchat.Concord-256.png")


def windows_version_file(here: Path) -> str:
    """Write the Windows version resource (Explorer's Details tab) and return its path."""
    sys.path.insert(0, str(here.parent))
    from desktop.identity import APP_NAME, VERSION

    parts = [int(x) for x in re.findall(r"\d+", VERSION)[:3]]
    nums = ", ".join(str(n) for n in [*parts, 0, 0, 0, 0][:4])
    fields = {
        "CompanyName": "Concord",
        "FileDescription": APP_NAME,
        "FileVersion": VERSION,
        "ProductName": APP_NAME,
        "ProductVersion": VERSION,
        "LegalCopyright": "Copyright (c) the Concord authors (MIT)",
    }
    strings = ",\n".join(f"          StringStruct('{k}', '{v}')" for k, v in fields.items())
    text = f"""VSVersionInfo(
  ffi=FixedFileInfo(filevers=({nums}), prodvers=({nums})),
  kids=[
    StringFileInfo([StringTable('040904B0', [
{strings}
    ])]),
    VarFileInfo([VarStruct('Translation', [1033, 1200])])
  ]
)
"""
    path = here.parent / "build" / "concord-version-info.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)
