"""Leader lock: an OS file lock the kernel drops when its holder dies, plus a fencing epoch."""

from __future__ import annotations

import os
import sys
import weakref
from pathlib import Path

if sys.platform == "win32":  # pragma: no cover - Windows only, untested here
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
_locks: weakref.WeakSet[LeaderLock] = weakref.WeakSet()


class LeaderLock:
    """Non-blocking exclusive lock on ``lock_path``; ``bump_epoch`` while holding it.

    Never blocks: ``try_acquire`` polls (``LOCK_NB``); callers retry on a timer.
    """

    def __init__(self, lock_path: Path, epoch_path: Path) -> None:
        self._path = lock_path
        self._epoch_path = epoch_path
        self._fd: int | None = None
        self.held = False
        _locks.add(self)

    def try_acquire(self) -> bool:
        """Take the lock if free. Raises OSError if the lock file cannot be opened."""
        if self.held:
            return True
        if self._fd is None:
            self._fd = os.open(self._path, _OPEN_FLAGS, 0o600)
        self.held = _try_lock(self._fd)
        return self.held

    def bump_epoch(self, floor: int = 0) -> int:
        """Read, increment and persist the epoch (must hold the lock). Returns the new epoch."""
        if not self.held:
            raise RuntimeError("bump_epoch without holding the lock")
        old = 0
        try:
            fd = os.open(self._epoch_path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            try:
                old = int(os.read(fd, 64).decode("ascii").strip() or 0)
            finally:
                os.close(fd)
        except FileNotFoundError:
            pass
        except ValueError:
            old = 0
        epoch = max(old, floor) + 1
        tmp = self._epoch_path.with_name(f".epoch.{os.getpid()}.tmp")
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600
        )
        try:  # no fsync: after a machine crash no process of the old epochs is left to fence
            os.write(fd, f"{epoch}\n".encode("ascii"))
        finally:
            os.close(fd)
        os.replace(tmp, self._epoch_path)
        return epoch

    def still_ours(self) -> bool:
        """False if the lock file was removed or replaced while we hold it (e.g. a cleaner
        emptied the runtime directory): another process could then lock a new file."""
        if self._fd is None:
            return False
        try:
            st, cur = os.fstat(self._fd), os.stat(self._path, follow_symlinks=False)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == (cur.st_dev, cur.st_ino)

    def release(self) -> None:
        """Give the lock up (the descriptor stays open for the next attempt if still valid)."""
        if self.held and self._fd is not None:
            self.held = False
            try:
                _unlock(self._fd)
            except OSError:
                self.close()
                return
            if not self.still_ours():
                self.close()

    def close(self) -> None:
        """Release and close the descriptor."""
        fd, self._fd, self.held = self._fd, None, False
        if fd is not None:
            os.close(fd)

    def _forget_in_child(self) -> None:
        # A forked child shares the open file description: closing its copy keeps the parent's
        # lock (flock is released only when every descriptor is closed); LOCK_UN would not.
        fd, self._fd, self.held = self._fd, None, False
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass


def _after_fork_in_child() -> None:
    for lock in list(_locks):
        lock._forget_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
