"""Per-run scratch directories in a shared ``tmp/``, with the leftovers of killed runs swept away.

Each run that writes to the cache holds an exclusive ``flock`` on its own ``tmp/run-XXXX`` for as long
as it lives; staging dirs, temp files and trash go inside. The kernel drops the lock when the process
dies, however it dies, so a later run can tell a killed run's directory (lock free) from a live one's
(lock held) without guessing from ages or process ids, even across machines sharing the cache.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from contextlib import suppress
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; scratch dirs are still private, only the sweep is skipped
    fcntl = None  # type: ignore[assignment]

__all__ = ["RUN_PREFIX", "Scratch"]

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


def sweep(tmp: Path) -> list[str]:
    """Remove the run dirs of dead runs (and day-old foreign leftovers) in ``tmp``; the names removed."""
    if fcntl is None:
        return []
    removed = []
    now = time.time()
    try:
        paths = list(tmp.iterdir())
    except OSError:
        return []
    for path in paths:
        name = path.name
        try:
            age = now - path.lstat().st_mtime
        except OSError:
            continue
        if name.startswith(RUN_PREFIX) and age > _GRACE_S and _remove_if_unlocked(path):
            removed.append(name)
        elif not name.startswith(RUN_PREFIX) and age > _FOREIGN_STALE_S:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(name)
    return removed


def _remove_if_unlocked(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # its run is alive
        with suppress(OSError):
            shutil.rmtree(path)
        return not path.exists()
    finally:
        os.close(fd)
