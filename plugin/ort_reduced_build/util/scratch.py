"""Per-run scratch directories in a shared ``tmp/``, with the leftovers of killed runs swept away.

Each run that writes to the cache holds an exclusive ``flock`` on its own ``tmp/run-XXXX`` for as long
as it lives; staging dirs, temp files and trash go inside. The kernel drops the lock when the process
dies, however it dies, so a later run can tell a killed run's directory (lock free) from a live one's
(lock held) without guessing from ages or process ids, even across machines sharing the cache.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time
from contextlib import suppress
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; scratch dirs are still private, only the sweep is skipped
    fcntl = None  # type: ignore[assignment]

__all__ = ["RUN_PREFIX", "Scratch", "lock_file"]

RUN_PREFIX = "run-"
_GRACE_S = 60.0
"""A run dir younger than this is never swept: its owner may not have taken its lock yet."""
_FOREIGN_STALE_S = 24 * 3600.0
"""Anything else in ``tmp/`` (older layouts' staging dirs and temp files) is removed after a day."""


class Scratch:
    """This process's run directory under ``tmp``; created on first use, removed by ``close``."""

    def __init__(self, tmp: Path) -> None:
        """Sweep ``tmp`` of dead runs' leftovers (a ``listdir``, and a lock probe per run dir)."""
        self.tmp = tmp
        self._path: Path | None = None
        self._fd: int | None = None
        sweep(tmp)

    @property
    def path(self) -> Path:
        if self._path is None:
            path = Path(tempfile.mkdtemp(prefix=RUN_PREFIX, dir=self.tmp))
            if fcntl is not None:
                self._fd = os.open(path, os.O_RDONLY)
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            self._path = path
        return self._path

    def mkdtemp(self, prefix: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=prefix, dir=self.path))

    def close(self) -> None:
        if self._path is not None:
            shutil.rmtree(self._path, ignore_errors=True)
            self._path = None
        if self._fd is not None:
            os.close(self._fd)  # releases the lock
            self._fd = None


def lock_file(path: Path, *, exclusive: bool, blocking: bool = True) -> int | None:
    """An fd holding a ``flock`` on ``path`` (created if missing; closing the fd releases it). None where
    there is no lock to take: no ``flock`` (Windows), or a read-only directory without the file.
    ``BlockingIOError`` when not ``blocking`` and the lock is held elsewhere."""
    if fcntl is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError:
        return None
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | (0 if blocking else fcntl.LOCK_NB))
    except BaseException:
        os.close(fd)
        raise
    return fd


def sweep(tmp: Path) -> list[str]:
    """Remove the run dirs of dead runs (and day-old foreign leftovers) in ``tmp``; the names removed.

    Symlinks are never followed: not ``tmp`` itself (then nothing is swept), not an entry in it (the
    link is removed, never what it points to). Everything is done relative to one fd of ``tmp``.
    """
    if fcntl is None:
        return []
    try:
        dir_fd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return []  # missing, not a directory, or a symlink (ELOOP)
    try:
        return _sweep_at(dir_fd)
    finally:
        os.close(dir_fd)


def _sweep_at(dir_fd: int) -> list[str]:
    removed = []
    now = time.time()
    try:
        names = os.listdir(dir_fd)
    except OSError:
        return []
    for name in names:
        try:
            st = os.lstat(name, dir_fd=dir_fd)
        except OSError:
            continue
        age = now - st.st_mtime
        is_dir = stat.S_ISDIR(st.st_mode)
        if name.startswith(RUN_PREFIX) and is_dir and age > _GRACE_S and _remove_if_unlocked(name, dir_fd):
            removed.append(name)
        elif not name.startswith(RUN_PREFIX) and age > _FOREIGN_STALE_S:
            with suppress(OSError):
                if is_dir:
                    shutil.rmtree(name, dir_fd=dir_fd)
                else:
                    os.unlink(name, dir_fd=dir_fd)
                removed.append(name)
    return removed


def _remove_if_unlocked(name: str, dir_fd: int) -> bool:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # its run is alive
        with suppress(OSError):
            shutil.rmtree(name, dir_fd=dir_fd)
        try:
            os.lstat(name, dir_fd=dir_fd)
        except FileNotFoundError:
            return True
        return False
    finally:
        os.close(fd)
