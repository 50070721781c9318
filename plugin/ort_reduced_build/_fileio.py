"""Atomic file output: write a temp file beside the target, then rename it into place."""

from __future__ import annotations

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


def atomic_write(path: Path, data: bytes, tmp_dir: Path | None = None) -> None:
    """Replace ``path`` with ``data``; readers see the old file or the new one, never a part."""
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
    """Copy ``src`` to ``dst`` through a temp file in ``dst``'s directory."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        Path(tmp).replace(dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_link_or_copy(src: Path, dst: Path) -> None:
    """Put ``src``'s content at ``dst``: a hard link where possible (same file system), else a copy.

    Nothing is written when ``dst`` already is ``src``.
    """
    try:
        if dst.exists() and dst.samefile(src):
            return
    except OSError:
        pass
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
