"""The conversion cache seen from outside: what it holds (``cache info``), trimming it (``cache prune``),
emptying it (``cache clear``), as ``pip cache`` does.

Safe while other runs use the cache: every run holds a shared ``flock`` on the layout's ``in-use.lock``
for its whole life (``Cache``), and ``prune``/``clear`` take it exclusively, so they wait for the runs
using the cache to end and no run starts while they remove (a run that has found an entry links its
outputs to it at the end). Only names the cache makes are removed (``v<N>`` layouts; entries, stat
records, lock files and dead runs' scratch dirs in them), never through a symlink: a ``--cache-dir``
that is some other directory loses nothing else. Entries go least recently used first: an entry's
directory mtime is its last use (a hit sets it when an hour old), a stat record's mtime its last write.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from ..errors import CacheError
from ..util.scratch import lock_file, sweep
from .manifest import IN_USE, LAYOUT

__all__ = ["CacheInfo", "Item", "Removed", "clear", "human_size", "info", "parse_age", "parse_size", "prune"]

_LAYOUT_NAME = re.compile(r"v[0-9]+")


@dataclass(frozen=True)
class Item:
    """Something the cache can lose: an entry directory, or a stat record (a memo; losing it costs a rehash)."""

    path: Path
    size: int
    """Bytes of its regular files (symlinks count nothing, and are never followed)."""
    used: float
    """Its last use, seconds since the epoch."""
    is_entry: bool


@dataclass(frozen=True)
class CacheInfo:
    """What a cache dir holds."""

    directory: Path
    items: tuple[Item, ...]
    """The current layout's entries and stat records."""
    size: int
    """Bytes of every file the cache made (other layouts and scratch included)."""

    @property
    def entries(self) -> tuple[Item, ...]:
        return tuple(i for i in self.items if i.is_entry)

    @property
    def entry_bytes(self) -> int:
        return sum(i.size for i in self.entries)

    def _use(self, pick: Callable[[list[float]], float]) -> str | None:
        used = [i.used for i in self.entries]
        return _iso(pick(used)) if used else None

    def to_json_obj(self) -> dict[str, object]:
        return {
            "ok": True,
            "cache_dir": str(self.directory),
            "entries": len(self.entries),
            "size_bytes": self.size,
            "entry_bytes": self.entry_bytes,
            "oldest_use": self._use(min),
            "newest_use": self._use(max),
        }

    def lines(self) -> list[str]:
        used = f"oldest {self._use(min)}, newest {self._use(max)}" if self.entries else "-"
        return [
            f"cache dir:  {self.directory}",
            f"entries:    {len(self.entries)}",
            f"size:       {human_size(self.size)} ({human_size(self.entry_bytes)} in entries)",
            f"last used:  {used}",
        ]


@dataclass(frozen=True)
class Removed:
    """What ``prune`` or ``clear`` removed, and what is left."""

    entries: int
    size: int
    """Bytes removed."""
    left: CacheInfo

    def to_json_obj(self) -> dict[str, object]:
        left = self.left.to_json_obj()
        return {"ok": True, "removed_entries": self.entries, "removed_bytes": self.size, "left": left}

    def summary(self) -> str:
        left = self.left
        return (
            f"removed {self.entries} entr{'y' if self.entries == 1 else 'ies'} ({human_size(self.size)}); "
            f"{len(left.entries)} left, {human_size(left.size)} in {left.directory}"
        )


def info(root: Path) -> CacheInfo:
    """What the cache dir ``root`` holds (nothing if it does not exist); reads only."""
    items = list(_items(root / LAYOUT))
    size = sum(_size(root / name) for name in _layouts(root))
    return CacheInfo(root, tuple(sorted(items, key=lambda i: (i.used, str(i.path)))), size)


def prune(root: Path, max_size: int | None, older_than: float | None, on_wait: Callable[[], None]) -> Removed:
    """Remove what was last used more than ``older_than`` seconds ago, then the least recently used until the
    entries and stat records take at most ``max_size`` bytes. ``on_wait`` is called if runs using the cache
    must end first. Other layouts' entries and records (what older or newer versions of this package keep
    in the same directory: this one cannot use them) go first, then this layout's."""
    with _exclusive(root, on_wait):
        found = info(root)
        others = sorted(_layouts(root) - {LAYOUT})
        stale = sorted((i for name in others for i in _items(root / name)), key=lambda i: (i.used, str(i.path)))
        now, size = time.time(), sum(i.size for i in (*stale, *found.items))
        doomed = []
        for item in (*stale, *found.items):  # other layouts first, each least recently used first
            if (older_than is not None and now - item.used > older_than) or (max_size is not None and size > max_size):
                doomed.append(item)
                size -= item.size
        for layout in (*(root / name for name in others), root / LAYOUT):
            _remove(layout, [i for i in doomed if layout in i.path.parents])
            _tidy(layout, everything=False)
        for name in others:
            if not any(_items(root / name)):
                _delete(root / name)  # nothing left worth keeping: its locks and scratch go too
        left = info(root)
        return Removed(sum(i.is_entry for i in doomed), found.size - left.size, left)


def clear(root: Path, on_wait: Callable[[], None]) -> Removed:
    """Remove every entry and record of the cache (other layouts too); waits for runs using it to end."""
    with _exclusive(root, on_wait):
        found = info(root)
        _remove(root / LAYOUT, list(found.items))
        _tidy(root / LAYOUT, everything=True)
        for name in sorted(_layouts(root) - {LAYOUT}):
            _delete(root / name)
        left = info(root)
        return Removed(len(found.entries), found.size - left.size, left)


@contextmanager
def _exclusive(root: Path, on_wait: Callable[[], None]) -> Iterator[None]:
    """Hold every layout's ``in-use.lock`` exclusively (no run of any version uses the cache meanwhile)."""
    fds: list[int] = []
    waited = False
    try:
        for name in sorted(_layouts(root)):
            if not (root / name).is_dir() or (root / name).is_symlink():
                continue
            try:
                fd = lock_file(root / name / IN_USE, exclusive=True, blocking=False)
            except BlockingIOError:
                if not waited:  # said once, however many layouts are in use
                    on_wait()
                    waited = True
                fd = lock_file(root / name / IN_USE, exclusive=True)
            if fd is not None:
                fds.append(fd)
        yield
    finally:
        for fd in fds:
            os.close(fd)


def _remove(layout: Path, items: list[Item]) -> None:
    """Move each item out of the way with one rename (into ``tmp``), then delete it; never follows a link."""
    if not items:
        return
    with _removing(layout.parent):
        (layout / "tmp").mkdir(exist_ok=True)
        trash = Path(tempfile.mkdtemp(prefix="trash-", dir=layout / "tmp"))  # swept after a day if we die
    for n, item in enumerate(items):
        with _removing(item.path), suppress(FileNotFoundError):
            item.path.rename(trash / str(n))
    _delete(trash)


def _delete(path: Path) -> None:
    """Delete ``path``: a link or file is unlinked, a directory's tree removed (links in it are not followed)."""
    with _removing(path):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


@contextmanager
def _removing(path: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        cause = (exc.strerror or str(exc)).lower()
        raise CacheError(f"{path}: cannot remove from the cache: {cause}") from None


def _tidy(layout: Path, *, everything: bool) -> None:
    """Remove lock files of entries that are gone (all of them: ``everything``), empty fan-out dirs and
    dead runs' scratch dirs. Only under the exclusive lock: a lock file in use must not be unlinked."""
    sweep(layout / "tmp")
    for lock in _scan(layout / "locks"):
        key = lock.name.removesuffix(".lock")
        if lock.name.endswith(".lock") and (everything or not os.path.lexists(layout / "objects" / key[:2] / key)):
            with suppress(OSError):
                Path(lock.path).unlink()
    for fan in _scan(layout / "objects"):
        with suppress(OSError):
            Path(fan.path).rmdir()  # only if empty (a link or file is not a directory: left alone)


def _layouts(root: Path) -> set[str]:
    try:
        return {e.name for e in os.scandir(root) if _LAYOUT_NAME.fullmatch(e.name)}
    except OSError:
        return set()


def _items(layout: Path) -> Iterator[Item]:
    yield from _entries(layout)
    yield from _records(layout)


def _entries(layout: Path) -> Iterator[Item]:
    for fan in _scan(layout / "objects"):
        for entry in _scan(Path(fan.path)) if fan.is_dir(follow_symlinks=False) else [fan]:
            with suppress(OSError):
                st = entry.stat(follow_symlinks=False)
                yield Item(Path(entry.path), _size(Path(entry.path)), st.st_mtime, is_entry=True)


def _records(layout: Path) -> Iterator[Item]:
    for record in _scan(layout / "stat"):
        with suppress(OSError):
            st = record.stat(follow_symlinks=False)
            yield Item(Path(record.path), st.st_size if stat.S_ISREG(st.st_mode) else 0, st.st_mtime, is_entry=False)


def _scan(directory: Path) -> list[os.DirEntry[str]]:
    try:
        return list(os.scandir(directory))
    except OSError:
        return []


def _size(path: Path) -> int:
    """Bytes of the regular files at or below ``path``, never following a symlink."""
    try:
        st = path.lstat()
    except OSError:
        return 0
    if stat.S_ISREG(st.st_mode):
        return st.st_size
    if not stat.S_ISDIR(st.st_mode):
        return 0
    return sum(_size(Path(e.path)) for e in _scan(path))


_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]i?)?b?", re.IGNORECASE)
_AGES = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_AGE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])?", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``500M``, ``1.5G``, ``2GiB``, ``1000`` (bytes): k/M/G/T are powers of 1000, Ki/Mi/Gi/Ti of 1024."""
    found = _SIZE.fullmatch(text.strip())
    if not found:
        raise ValueError(f"{text!r} is not a size (e.g. 500M, 2G, 1GiB)")
    return int(float(found[1]) * _UNITS[(found[2] or "").lower()])


def parse_age(text: str) -> float:
    """``30d``, ``12h``, ``90m``, ``2w``, ``45s`` or a number of seconds."""
    found = _AGE.fullmatch(text.strip())
    if not found:
        raise ValueError(f"{text!r} is not an age (e.g. 30d, 12h, 2w)")
    return float(found[1]) * _AGES[(found[2] or "s").lower()]


def human_size(size: int) -> str:
    for unit, factor in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{size} bytes"


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
