"""The app's log: the console (level ``CONCORD_LOG``, WARNING by default) and a rotated file in
the platform's log directory (INFO and up), where uncaught Python exceptions — of the main thread
and of any other — land with their traceback, and ``faulthandler`` writes a hard crash's stacks
(``crash.log``). docs/architecture.md §2.1 says where the directory is.

The directory is ``CONCORD_LOG_DIR`` when set; else ``<data dir>/log`` when the data directory was
overridden (``--data-dir``/``CONCORD_DATA_DIR``: tests, portable installs), so such runs never
write into the user's own log; else ``platformdirs.user_log_dir("concord")``. Every process of
every profile appends to the one ``concord.log``; each line carries the process id. A directory
that cannot be written leaves the console only: logging never stops the app from starting.
"""

from __future__ import annotations

import faulthandler
import logging
import logging.handlers
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import platformdirs

APP = "concord"
LOG_NAME = "concord.log"
CRASH_NAME = "crash.log"
MAX_BYTES = 1_000_000  # per file; with BACKUPS old files, ~5 MB at most
BACKUPS = 4
CRASH_MAX_BYTES = 256_000
FILE_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"

log = logging.getLogger(__name__)


@dataclass
class LogFiles:
    """Where this process logs (``None``: the console only)."""

    directory: Path | None = None
    log: Path | None = None
    crash: Path | None = None


_current = LogFiles()
_crash_file: IO[str] | None = None  # kept open for faulthandler for the life of the process


def current() -> LogFiles:
    """Where this process logs (set by :func:`setup`)."""
    return _current


def log_dir(data_dir: str | None = None) -> Path:
    """The log directory for this run (see the module's docstring)."""
    explicit = os.environ.get("CONCORD_LOG_DIR")
    if explicit:
        return Path(explicit)
    if data_dir:
        return Path(data_dir) / "log"
    return Path(platformdirs.user_log_dir(APP, appauthor=False))


def setup(directory: Path | None) -> LogFiles:
    """Add the rotated file (INFO and up) to the root logger that ``main`` configured for the
    console, and the crash hooks; returns where the files are. The console keeps its level.
    Called again, it replaces its own file handler (tests)."""
    global _current
    root = logging.getLogger()
    console_level = root.level or logging.WARNING
    for handler in list(root.handlers):
        if getattr(handler, "_concord", False):
            root.removeHandler(handler)
            handler.close()
        elif handler.level == logging.NOTSET:
            handler.setLevel(console_level)  # the root may go lower for the file, not these
    files = _open_files(directory) if directory is not None else LogFiles()
    if files.log is not None:
        handler = logging.handlers.RotatingFileHandler(
            files.log, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
        )
        handler.setLevel(min(console_level, logging.INFO))
        handler.setFormatter(logging.Formatter(FILE_FORMAT))
        handler.addFilter(_not_chatty)
        handler._concord = True  # type: ignore[attr-defined]  # replaced by the next setup()
        root.addHandler(handler)
        root.setLevel(min(console_level, logging.INFO))
    logging.captureWarnings(True)  # Python warnings reach the file too, not only stderr
    sys.excepthook = _excepthook
    threading.excepthook = _thread_excepthook
    _current = files
    if files.log is not None:
        log.info("logging to %s (pid %d)", files.log, os.getpid())
    return files


def _not_chatty(record: logging.LogRecord) -> bool:
    """httpx logs every request at INFO: the file keeps its warnings only."""
    return record.name != "httpx" or record.levelno >= logging.WARNING


# What Qt's offscreen platform plugin says of calls it ignores ("This plugin does not support
# raise()"): a note about the plugin, not a problem of the app; no real platform says it.
_PLUGIN_NOTE = "This plugin does not support "
_QT_LEVELS = {
    "QtDebugMsg": logging.DEBUG,
    "QtInfoMsg": logging.INFO,
    "QtCriticalMsg": logging.ERROR,
    "QtFatalMsg": logging.CRITICAL,
}


def qt_log_level(kind: Any, message: str) -> int:
    """The Python logging level a Qt message of ``kind`` (a ``QtMsgType``) is logged at."""
    level = _QT_LEVELS.get(getattr(kind, "name", ""), logging.WARNING)
    if level >= logging.WARNING and message.startswith(_PLUGIN_NOTE):
        return logging.DEBUG
    return level


def route_qt_messages() -> None:
    """Send Qt's messages to the log (logger ``qt`` or ``qt.<category>``): they reach the file
    with the rest, and the console at its level, formatted like every other line."""
    from PySide6.QtCore import QMessageLogContext, QtMsgType, qInstallMessageHandler

    def handler(kind: QtMsgType, context: QMessageLogContext, message: str) -> None:
        category = context.category or "default"
        name = "qt" if category == "default" else category  # Qt's own: "qt.qpa.xcb", ...
        logging.getLogger(name).log(qt_log_level(kind, message), "%s", message)

    qInstallMessageHandler(handler)


def _open_files(directory: Path) -> LogFiles:
    """Create the directory and open the crash file for faulthandler (None where impossible)."""
    global _crash_file
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        crash = directory / CRASH_NAME
        if crash.exists() and crash.stat().st_size > CRASH_MAX_BYTES:
            crash.replace(crash.with_name(CRASH_NAME + ".1"))
        if _crash_file is None or _crash_file.name != str(crash):
            stream = open(crash, "a", encoding="utf-8")  # kept open for faulthandler
            stream.write(f"--- concord pid {os.getpid()} started {time.strftime('%F %T %z')}\n")
            stream.flush()
            faulthandler.enable(stream, all_threads=True)
            if _crash_file is not None:
                _crash_file.close()
            _crash_file = stream
        return LogFiles(directory, directory / LOG_NAME, crash)
    except OSError as exc:
        print(f"concord: cannot write the log in {directory}: {exc}", file=sys.stderr)
        return LogFiles()


def _excepthook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    """An exception nobody caught (a Qt slot, the main thread): logged with its traceback."""
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, tb)
        return
    logging.getLogger("desktop.crash").critical("uncaught exception", exc_info=(kind, value, tb))


def _thread_excepthook(args: Any) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("desktop.crash").critical(
        "uncaught exception in thread %s",
        name,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )
