"""Where a scope's lock, epoch file and hub socket live: a private per-user runtime directory."""

from __future__ import annotations

import hashlib
import os
import stat
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

APP = "concord"
MAX_SOCKET_PATH = 100  # bytes; sun_path is 108 on Linux, 104 on macOS


@dataclass(frozen=True)
class ScopePaths:
    """Files of one scope. ``address`` is a Unix socket path or a Windows pipe name."""

    directory: Path
    lock: Path
    epoch: Path
    address: str
    key: str


def scope_key(scope: str) -> str:
    """A short, filename-safe, non-reversible key for a scope (profile) name."""
    return hashlib.sha256(scope.encode("utf-8", "surrogatepass")).hexdigest()[:20]


def _uid() -> int | None:
    return os.getuid() if hasattr(os, "getuid") else None


def ensure_private_dir(path: Path, *, create_parents: bool = False) -> None:
    """Create ``path`` as a 0700 directory owned by us, or check that it already is one.

    Raises OSError (or PermissionError) if it is a symlink, not a directory, owned by someone
    else, or cannot be made private.
    """
    try:
        if create_parents:
            path.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(f"{path} is not a directory (or is a symlink)")
    uid = _uid()
    if uid is None:  # Windows: the user profile's ACLs protect it
        return
    if st.st_uid != uid:
        raise PermissionError(f"{path} is owned by uid {st.st_uid}, not {uid}")
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(path, 0o700)
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(f"{path} is not writable")


def _default_bases() -> list[Path]:
    bases = []
    try:
        import platformdirs

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "XDG_RUNTIME_DIR is not set" fallback warning
            bases.append(Path(platformdirs.user_runtime_dir(APP, appauthor=False)))
    except Exception:
        pass
    uid = _uid()
    suffix = f"{APP}-{uid}" if uid is not None else APP
    bases.append(Path(tempfile.gettempdir()) / suffix)
    return bases


def resolve(scope: str, runtime_dir: str | os.PathLike[str] | None = None) -> ScopePaths:
    """Create (if needed) and validate the scope's directory; raise OSError if unusable."""
    key = scope_key(scope)
    errors: list[str] = []
    if runtime_dir is not None:
        candidates = [(Path(runtime_dir), False)]
    else:
        candidates = [(base, True) for base in _default_bases()]
    for base, private_base in candidates:
        try:
            if private_base:
                ensure_private_dir(base, create_parents=True)
            else:
                base.mkdir(mode=0o700, parents=True, exist_ok=True)
            directory = base / key
            if sys.platform == "win32":
                address = rf"\\.\pipe\{APP}-bus-{scope_key(str(directory))}"
            else:
                address = str(directory / "hub.sock")
                if len(os.fsencode(address)) >= MAX_SOCKET_PATH:
                    raise OSError(f"socket path too long ({address!r})")
            ensure_private_dir(directory)
            return ScopePaths(directory, directory / "lock", directory / "epoch", address, key)
        except OSError as exc:
            errors.append(f"{base}: {exc}")
    raise OSError("no usable runtime directory: " + "; ".join(errors))
