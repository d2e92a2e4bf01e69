"""An embedded server's database written by a newer Concord is refused before anything starts,
with words a person understands (the app then says so and exits; nothing is changed)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from desktop.app import _embedded_too_new
from server.storage import DB_VERSION


def test_a_newer_embedded_database_is_named_and_left_alone(tmp_path: Path) -> None:
    assert _embedded_too_new(tmp_path) is None  # no database yet: a first start
    db = tmp_path / "concord.db"
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version={DB_VERSION}")
    assert _embedded_too_new(tmp_path) is None
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version={DB_VERSION + 3}")
    before = db.read_bytes()
    message = _embedded_too_new(tmp_path)
    assert message is not None and "newer version of Concord" in message
    assert f"schema {DB_VERSION + 3}" in message and db.read_bytes() == before
