"""A real browser for end-to-end tests: the distribution's Chromium, headless, opening a page
that a small HTTP server of the test serves (and to which the page POSTs what it saw).

Chromium is an apt package (``.ci/run`` installs ``chromium``). Under CI (``CI=true``) a missing
browser fails the test with a clear message; elsewhere the test is skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium_or_skip() -> str:
    """The browser's path; fails under CI when it is missing, skips elsewhere."""
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    message = (
        "Chromium is not installed: the browser test needs the Debian package 'chromium' "
        "(apt-get install -y --no-install-recommends chromium; .ci/run installs it)"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


class PageServer:
    """Serves ``page`` at ``/`` and collects the JSON bodies POSTed to ``/collect``, in the order
    the page numbered them (``n``): a page's reports may arrive out of order."""

    def __init__(self, page: str, host: str = "127.0.0.1") -> None:
        self.page = page.encode()
        self._reports: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] not in ("/", "/index.html"):
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(outer.page)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(outer.page)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                try:
                    report = json.loads(body)
                except ValueError:
                    report = {"type": "unparsable", "body": body.decode("utf-8", "replace")}
                with outer._lock:
                    outer._reports.append(report)
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.host, self.port = self.httpd.server_address[:2]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def reports(self) -> list[dict[str, Any]]:
        """Everything reported so far, in the page's order (by ``n``; unnumbered last)."""
        with self._lock:
            items = list(self._reports)
        return sorted(items, key=lambda r: r.get("n", 1 << 62))

    def __enter__(self) -> PageServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextmanager
def chromium(binary: str, url: str, profile: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Headless Chromium showing ``url``; killed (and reaped) on exit."""
    args = [
        binary,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-features=Translate,MediaRouter,OptimizationHints",
        url,
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def log_tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no browser log)"
