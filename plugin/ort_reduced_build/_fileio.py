"""Atomic file output: write a temp file beside the target, then rename it into place.

A target that already holds exactly the new bytes is left alone, mtime included, so build tools
(make, ninja with ``restat``) do not rebuild what depends on an output that did not change.
Files get the mode a plain ``open()`` would give them (0666 less the umask), not mkstemp's 0600.
"""

from __future__ import annotations

import filecmp
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["atomic_copy", "atomic_link_or_copy", "atomic_write", "file_digest"]

_CHUNK = 1 << 20


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes, streamed."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temp_beside(path: Path, tmp_dir: Path | None = None) -> tuple[int, Path]:
    fd, tmp = tempfile.mkstemp(dir=tmp_dir or path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, 0o666 & ~_umask())
    return fd, Path(tmp)


def atomic_write(path: Path, data: bytes, tmp_dir: Path | None = None) -> None:
    """Replace ``path`` with ``data``; readers see the old file or the new one, never a part."""
    if _holds(path, data):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temp_beside(path, tmp_dir)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_copy(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` through a temp file in ``dst``'s directory (nothing if equal)."""
    if _same_content(src, dst):
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temp_beside(dst)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        tmp.replace(dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_link_or_copy(src: Path, dst: Path) -> None:
    """Put ``src``'s content at ``dst``: a hard link where possible (same file system), else a copy.

    Nothing is written when ``dst`` already holds the same bytes.
    """
    if _same_content(src, dst):
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.link")
    try:
        tmp.unlink(missing_ok=True)
        os.link(src, tmp)
    except OSError:
        atomic_copy(src, dst)
        return
    try:
        tmp.replace(dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _same_content(src: Path, dst: Path) -> bool:
    try:
        if dst.samefile(src):
            return True
        return dst.stat().st_size == src.stat().st_size and filecmp.cmp(src, dst, shallow=False)
    except OSError:
        return False


def _holds(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False
