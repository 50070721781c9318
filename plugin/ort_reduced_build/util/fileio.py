"""Atomic file output: write a temp file beside the target, then rename it into place.

A target that already holds exactly the new bytes is left alone, mtime included, so build tools
(make, ninja with ``restat``) do not rebuild what depends on an output that did not change.
Files get the mode a plain ``open()`` would give them (0666 less the umask), not mkstemp's 0600.
"""

from __future__ import annotations

import errno
import filecmp
import mmap
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

Buffer = bytes | mmap.mmap

__all__ = [
    "TEMP_MARK",
    "atomic_copy",
    "atomic_link_or_copy",
    "atomic_write",
    "content_digest",
    "file_digest",
    "file_integrity_digest",
    "integrity_digest",
    "keep_mtimes_of_unchanged",
    "mapped",
    "open_regular",
    "replacing",
    "sample_digest",
    "sweep_stale_temps",
]

TEMP_MARK = ".ortrb-"
"""In the name of every temp file we create beside an output: ``.<name>.ortrb-XXXX.tmp`` / ``.link``."""
STALE_AFTER_S = 120.0
"""A temp file this old (by ctime) belongs to a killed run: writers rename theirs within moments."""


def open_regular(path: Path) -> int:
    """An fd open for reading ``path``; ``OSError`` unless it is a regular file (a FIFO would block)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise OSError(errno.EINVAL, f"not a regular file ({_kind(mode)})", str(path))
    return fd


def _kind(mode: int) -> str:
    kinds = {stat.S_ISDIR: "a directory", stat.S_ISFIFO: "a FIFO", stat.S_ISSOCK: "a socket"}
    return next((name for test, name in kinds.items() if test(mode)), "a device")


def file_digest(path: Path) -> str:
    """BLAKE3 of a regular file's bytes (``content_digest``)."""
    with mapped(path) as data:
        return content_digest(data)


def content_digest(data: Buffer) -> str:
    """BLAKE3-256 of bytes, the hash of what the cache key is made from: cryptographic, as sha256 is, and
    4x faster (4 vs 1 GB/s on this project's machines), which counts when 400 MB of models are new."""
    import blake3

    return str(blake3.blake3(data).hexdigest())


def integrity_digest(data: Buffer) -> str:
    """xxh3-128 of bytes: what a cache manifest records to notice a changed entry (twice as fast again as BLAKE3)."""
    import xxhash

    return xxhash.xxh3_128_hexdigest(data)


def file_integrity_digest(path: Path) -> str:
    with mapped(path) as data:
        return integrity_digest(data)


SAMPLE = 64 * 1024


def sample_digest(path: Path) -> str:
    """xxh3-128 of a file's size, first and last ``SAMPLE`` bytes (all of it when small): cheap enough to
    read on every cache hit, and different for different models in practice (not a proof against a forger)."""
    with os.fdopen(open_regular(path), "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size <= 2 * SAMPLE:
            data = f.read()  # what is there: a /proc file's stat says 0 bytes
            size = len(data)
        else:
            data = f.read(SAMPLE)
            f.seek(size - SAMPLE)
            data += f.read(SAMPLE)
    return integrity_digest(b"%d\0" % size + data)


@contextmanager
def mapped(path: Path) -> Iterator[Buffer]:
    """A regular file's bytes, memory-mapped read-only (no copy into this process's memory).

    A file whose stat says 0 bytes is read instead: a ``/proc`` file has content all the same.
    """
    with os.fdopen(open_regular(path), "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            yield f.read()
            return
        view = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            yield view
        finally:
            with suppress(BufferError):  # a view still exported (the caller kept a slice): the GC unmaps it
                view.close()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temp_beside(path: Path, tmp_dir: Path | None = None, suffix: str = ".tmp") -> tuple[int, Path]:
    fd, tmp = tempfile.mkstemp(dir=tmp_dir or path.parent, prefix=f".{path.name}{TEMP_MARK}", suffix=suffix)
    os.fchmod(fd, 0o666 & ~_umask())
    return fd, Path(tmp)


def sweep_stale_temps(directory: Path) -> None:
    """Remove the temp files a killed run left in ``directory`` (``.*.ortrb-*.tmp``, ``.ort`` and ``.link``).

    A ``.tmp`` (or ``.ort``) is stale once its mtime is ``STALE_AFTER_S`` old (writers rename theirs at once); a
    ``.link`` shares the cache file's mtime, so it is stale once the process named in it is gone.
    """
    now = time.time()
    try:
        paths = [p for p in directory.iterdir() if p.name.startswith(".") and TEMP_MARK in p.name]
    except OSError:
        return
    for path in paths:
        try:
            st = path.lstat()
            if not stat.S_ISREG(st.st_mode):
                continue
            if path.name.endswith(".link"):
                pid = path.name.removesuffix(".link").rsplit(TEMP_MARK, 1)[1]
                stale = now - st.st_ctime > 24 * 3600 or (pid.isdigit() and not _alive(int(pid)))
            else:  # .tmp, or a temp file named for a tool that reads the suffix (.ort)
                stale = now - st.st_mtime > STALE_AFTER_S
            if stale:
                path.unlink()
        except OSError:
            pass


def _alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would terminate it there: assume alive (the age rule applies)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists
        return True
    return True


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


@contextmanager
def replacing(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A temp file beside ``path`` (mode as ``open()`` gives) to fill; renamed over ``path`` when the block
    ends without an exception, else removed. ``suffix``: the temp name's, for tools that read it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temp_beside(path, suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_copy(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` through a temp file in ``dst``'s directory (nothing if equal)."""
    if _same_content(src, dst):
        return
    with replacing(dst) as tmp:
        shutil.copyfile(src, tmp)


def atomic_link_or_copy(src: Path, dst: Path) -> None:
    """Put ``src``'s content at ``dst``: a hard link where possible (same file system), else a copy.

    Nothing is written when ``dst`` already holds the same bytes.
    """
    if _same_content(src, dst):
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}{TEMP_MARK}{os.getpid()}.link")
    try:
        tmp.unlink(missing_ok=True)
        os.link(src, tmp)
    except OSError:
        atomic_copy(src, dst)
        return
    try:
        tmp.replace(dst)
        # rename(2) does nothing when both names are links of one file (a concurrent run linked it first)
        tmp.unlink(missing_ok=True)
    except FileNotFoundError:  # swept by a run that took us for dead (another pid namespace): copy instead
        atomic_copy(src, dst)
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


@contextmanager
def keep_mtimes_of_unchanged(root: Path) -> Iterator[None]:
    """Files under ``root`` that the body rewrites with the same bytes get their old mtime back, so that
    ninja or make does not rebuild what depends on them (for a generator that rewrites all its outputs)."""
    before: dict[Path, tuple[str, int]] = {}
    for path in sorted(root.rglob("*")) if root.is_dir() else ():
        with suppress(OSError):
            if path.is_file() and not path.is_symlink():
                before[path] = (file_digest(path), path.stat().st_mtime_ns)
    yield
    for path, (digest, mtime_ns) in before.items():
        with suppress(OSError):
            if path.stat().st_mtime_ns != mtime_ns and file_digest(path) == digest:
                os.utime(path, ns=(time.time_ns(), mtime_ns))
