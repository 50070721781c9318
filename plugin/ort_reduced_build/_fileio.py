"""Atomic file output: write a temp file beside the target, then rename it into place.

A target that already holds exactly the new bytes is left alone, mtime included, so build tools
(make, ninja with ``restat``) do not rebuild what depends on an output that did not change.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["atomic_copy", "atomic_write"]


def atomic_write(path: Path, data: bytes, tmp_dir: Path | None = None) -> None:
    """Replace ``path`` with ``data``; readers see the old file or the new one, never a part."""
    if _holds(path, data):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=tmp_dir or path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_copy(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` through a temp file in ``dst``'s directory (nothing if equal)."""
    try:
        if dst.stat().st_size == src.stat().st_size and filecmp.cmp(src, dst, shallow=False):
            return
    except OSError:
        pass
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        Path(tmp).replace(dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _holds(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False
