"""``concord-server`` as a real process: the installed entry point, run with a timeout (and
``free_port``, re-exported from :mod:`tests.support.procs`, for a port to serve on)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.procs import free_port

CLI = Path(sys.executable).with_name("concord-server")
__all__ = ["CLI", "ENV", "cli", "free_port"]

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``concord-server *args`` with ``stdin`` as its input; its output captured as text."""
    return subprocess.run(
        [str(CLI), *args], input=stdin, capture_output=True, text=True, timeout=30, env=ENV
    )
