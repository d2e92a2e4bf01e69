"""Where a profile lives: its cache, its window layout and preferences (never secrets)."""

from __future__ import annotations

import getpass
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

APP = "concord"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:64] or "default"


def local_username() -> str:
    try:
        name = getpass.getuser()
    except Exception:
        name = "me"
    return _safe(name)


@dataclass(frozen=True)
class Profile:
    name: str
    server_url: str | None  # None: the embedded server
    username: str
    data_dir: Path
    config_dir: Path

    @property
    def key(self) -> str:
        """A stable identity for the bus scope and the cache (not the embedded server's port)."""
        return f"{self.name}:{self.server_url or 'embedded'}"

    @classmethod
    def resolve(
        cls,
        name: str | None,
        server_url: str | None,
        username: str | None = None,
        base_data: Path | None = None,
        base_config: Path | None = None,
    ) -> Profile:
        name = _safe(name or "default")
        data = (base_data or Path(platformdirs.user_data_dir(APP, appauthor=False))) / name
        config = (base_config or Path(platformdirs.user_config_dir(APP, appauthor=False))) / name
        data.mkdir(parents=True, exist_ok=True, mode=0o700)
        config.mkdir(parents=True, exist_ok=True, mode=0o700)
        saved = read_json(config / "profile.json")
        url = server_url or saved.get("server_url")
        user = username or saved.get("username") or local_username()
        profile = cls(name, url, user, data, config)
        write_json(config / "profile.json", {"server_url": url, "username": user})
        return profile


def read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def write_json(path: Path, value: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value, indent=1))
    tmp.replace(path)
