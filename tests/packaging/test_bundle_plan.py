"""The bundle's trimming (``packaging/bundle_plan.py``): which Qt plugins stay, and the DT_NEEDED
walk that drops the host libraries only left-out parts needed. Runs on real ELF files."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("bundle_plan", ROOT / "packaging" / "bundle_plan.py")
assert spec is not None and spec.loader is not None
bundle_plan = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bundle_plan)

PLUGINS = "PySide6/Qt/plugins"


def _ssl_extension() -> Path:
    import _ssl

    return Path(_ssl.__file__)


def _system_lib(soname: str) -> Path:
    for folder in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64"):
        if (Path(folder) / soname).exists():
            return Path(folder) / soname
    raise AssertionError(f"{soname} not found on this system")


@pytest.mark.parametrize(
    ("dest", "kept"),
    [
        (f"{PLUGINS}/platforms/libqxcb.so", True),
        (f"{PLUGINS}/platforms/libqwayland.so", True),
        (f"{PLUGINS}/platforms/libqoffscreen.so", True),
        (f"{PLUGINS}/platforms/libqeglfs.so", False),
        (f"{PLUGINS}/platforms/libqvnc.so", False),
        (f"{PLUGINS}/platformthemes/libqgtk3.so", False),
        (f"{PLUGINS}/platformthemes/libqxdgdesktopportal.so", True),
        (f"{PLUGINS}/wayland-decoration-client/libadwaita.so", True),
        (f"{PLUGINS}/wayland-shell-integration/libxdg-shell.so", True),
        (f"{PLUGINS}/wayland-shell-integration/libivi-shell.so", False),
        (f"{PLUGINS}/imageformats/libqsvg.so", True),
        (f"{PLUGINS}/imageformats/libqtiff.so", False),
        (f"{PLUGINS}/iconengines/libqsvgicon.so", True),
        (f"{PLUGINS}/networkinformation/libqnetworkmanager.so", True),
        (f"{PLUGINS}/platforminputcontexts/libibusplatforminputcontextplugin.so", True),
        (f"{PLUGINS}/tls/libqopensslbackend.so", False),
        (f"{PLUGINS}/generic/libqevdevmouseplugin.so", False),
        ("PySide6/Qt/lib/libQt6Core.so.6", True),  # not a plugin: the walk decides
    ],
)
def test_qt_plugins_kept_are_those_the_app_loads(dest: str, kept: bool) -> None:
    assert bundle_plan.plugin_kept(dest) is kept


def test_needed_reads_dt_needed_of_a_real_extension() -> None:
    assert "libssl.so.3" in bundle_plan.needed(str(_ssl_extension()))


def test_trim_keeps_what_is_reachable_and_drops_the_rest(tmp_path: Path) -> None:
    ssl_ext = _ssl_extension()
    analysis = SimpleNamespace(
        binaries=[
            ("lib-dynload/_ssl.so", str(ssl_ext), "EXTENSION"),
            ("libssl.so.3", str(_system_lib("libssl.so.3")), "BINARY"),
            ("libcrypto.so.3", str(_system_lib("libcrypto.so.3")), "BINARY"),  # via libssl
            ("libsqlite3.so.0", str(_system_lib("libsqlite3.so.0")), "BINARY"),  # nobody's
            (f"{PLUGINS}/platformthemes/libqgtk3.so", "/nonexistent/libqgtk3.so", "BINARY"),
        ],
        datas=[
            ("libsqlite3-link.so", "libsqlite3.so.0", "SYMLINK"),  # to a dropped library
            ("libssl-link.so", "libssl.so.3", "SYMLINK"),
            ("PySide6/Qt/translations/qtbase_de.qm", "/nonexistent/qtbase_de.qm", "DATA"),
            ("desktop/resources/icons/a.png", "/nonexistent/a.png", "DATA"),
        ],
    )
    host = tmp_path / "host-libs.txt"
    bundle_plan.trim(analysis, host)
    assert [d for d, _s, _k in analysis.binaries] == [
        "lib-dynload/_ssl.so",
        "libssl.so.3",
        "libcrypto.so.3",
    ]
    kept_data = [d for d, _s, _k in analysis.datas]
    assert kept_data == ["libssl-link.so", "desktop/resources/icons/a.png"]
    assert sorted(host.read_text().split()) == ["libcrypto.so.3", "libssl.so.3"]


@pytest.mark.parametrize(
    ("src", "host"),
    [
        ("/lib/x86_64-linux-gnu/libssl.so.3", True),
        ("/usr/lib/x86_64-linux-gnu/libxcb-cursor.so.0", True),
        # Debian's own python3 (sys.base_prefix == /usr): libpython and its modules stay bundled
        ("/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0", False),
        ("/usr/lib/python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so", False),
        ("/usr/lib/python3/dist-packages/PySide6/Qt/lib/libQt6Core.so.6", False),
        ("/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0", False),
        ("/work/.venv/lib/python3.11/site-packages/PySide6/Qt/lib/libQt6Gui.so.6", False),
    ],
)
def test_host_libraries_are_the_distributions_not_pythons(src: str, host: bool) -> None:
    assert bundle_plan.is_host_library(src) is host
