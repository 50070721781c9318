"""Content-addressed conversion cache, safe to share between concurrent builds.

Key: sha256 over the BLAKE3 digests of the model bytes, its external-data files' bytes and the custom-op
libraries' bytes, the conversion options, and the onnxruntime and plugin versions. Value: the ``.ort``
bytes (plus the optional optimized ONNX) and the model's usage as config text, with a manifest of their
xxh3-128 digests (a check, not a key: twice as fast again) so a changed entry is detected and rebuilt, never used.
The manifest also binds the entry to what it was made for: the key, and a digest of its inputs' sizes,
first and last 64 KiB (read on every hit: a stat-index record that names another file's digest, or an
entry moved under another key, is a miss, never another model's ``.ort``). Files in an entry must be
regular files; they are made read-only (0444), so the outputs hard-linked to them cannot be edited in
place, and a tool that replaces an output (temp file + rename) leaves the cache and other copies alone.

Entries are built in a private temp dir and published with one ``rename``; a file lock per key keeps
two builds from publishing (or discarding) the same entry at once. A stat index (size, mtime, inode,
ctime -> BLAKE3) spares rehashing unchanged files, so the warm path imports neither onnx nor
onnxruntime; ctime is set by the kernel on every write, so an edit that restores mtime is still seen.

A model's external-data files are found and checked by ``external_data``: they are only ever read.
Temp files live in this run's flock-held scratch dir (``util.scratch``); a killed run's are swept.

A cache that cannot be written (a read-only file system, no permission, a full disk) still serves its
verified entries; the first conversion it would have to store is a ``CacheError`` naming the cache dir
and what to do. Every run holds a shared ``flock`` on ``in-use.lock`` while it lives: ``cache prune`` and
``cache clear`` (``cache_admin``) take it exclusively, so they never remove an entry a run is using.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

from .._version import __version__, onnxruntime_version
from ..errors import CacheError, ConfigError
from ..settings import ConvertOptions
from ..util.fileio import atomic_write, content_digest, file_digest, file_integrity_digest, mapped
from ..util.scratch import Scratch, lock_file
from .config import (
    format_config,
    format_graph_types,
    format_value_types,
    parse_config,
    parse_graph_types,
    parse_value_types,
)
from .external_data import external_data_locations, external_data_path
from .manifest import (
    ANALYSIS,
    DIGEST,
    IN_USE,
    LAYOUT,
    READ_ONLY,
    CacheEntry,
    Manifest,
    entry_stamp,
    inputs_digest,
    read_entry_file,
    read_manifest,
    recorded_inputs,
    stat_stamp,
)

if TYPE_CHECKING:
    from filelock import FileLock

    from .analyze import ModelUsage

__all__ = ["IN_USE", "LAYOUT", "Cache", "CacheEntry", "default_cache_dir"]

_CANNOT_WRITE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT})
_TOUCH_AFTER_S = 3600.0
"""A hit sets its entry dir's mtime (its last use, for ``cache prune``) when it is older than this."""


def default_cache_dir() -> Path:
    """``$ORT_REDUCED_BUILD_CACHE_DIR``, else the user cache dir (platformdirs)."""
    env = os.environ.get("ORT_REDUCED_BUILD_CACHE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("ort-reduced-build", appauthor=False))


class Cache:
    """A cache directory. ``Cache(None)`` hashes nothing to disk and stores nothing (``--no-cache``).

    ``before_hashing`` is called before a file new to the stat index is hashed.
    """

    def __init__(self, root: Path | None, before_hashing: Callable[[], None] | None = None) -> None:
        self.given = root
        self.root = root / LAYOUT if root is not None else None
        self._before_hashing = before_hashing
        self._scratch: Scratch | None = None
        self._locks: dict[str, FileLock] = {}
        self._inputs: dict[str, str] = {}
        """Per key computed here: ``inputs_digest`` of the files it was computed from."""
        self.unwritable: str | None = None
        """Why nothing can be stored (``read-only file system``, say); None while the cache can be written."""
        self._in_use: int | None = None
        if self.root is not None:
            try:
                with self._writing():
                    for sub in ("objects", "stat", "tmp", "locks"):
                        (self.root / sub).mkdir(parents=True, exist_ok=True)
                self._in_use = lock_file(self.root / IN_USE, exclusive=False)
                # Its run dir is made on first use (a mkdir and rmdir per run cost 3 ms on ext4 with discard):
                # a read-only cache is found out by its first write, which no hit needs.
                if self.unwritable is None:
                    self._scratch = Scratch(self.root / "tmp")
            except OSError as exc:
                raise CacheError(f"{root}: cannot use as cache directory: {exc.strerror}") from None

    def close(self) -> None:
        """Remove this run's scratch dir (staging dirs not published by now are abandoned); let go of the cache."""
        if self._scratch is not None:
            self._scratch.close()
        if self._in_use is not None:
            os.close(self._in_use)  # releases the shared lock
            self._in_use = None

    @contextmanager
    def _writing(self, purpose: str | None = None) -> Iterator[None]:
        """Cache writes. One that fails for want of space or permission makes the cache read-only; if it
        was needed for ``purpose`` (a conversion to store), that is a ``CacheError`` naming the cache."""
        try:
            yield
        except OSError as exc:
            if exc.errno not in _CANNOT_WRITE:
                raise
            self._cannot_write(exc)
            if purpose is not None:
                raise self._unwritable_error(purpose) from None

    def _cannot_write(self, exc: OSError) -> None:
        """From now on, store nothing: serve verified entries only (a read-only or full cache)."""
        self.unwritable = (exc.strerror or str(exc)).lower()
        if self._scratch is not None:
            self._scratch.close()
            self._scratch = None

    def _unwritable_error(self, purpose: str) -> CacheError:
        needed = f", needed for {purpose}" if purpose else ""
        return CacheError(
            f"{self.given}: cannot write to the cache ({self.unwritable}){needed}; "
            "use another --cache-dir, or --no-cache"
        )

    def _remember(self, path: Path, data: bytes) -> None:
        """Write a memo (stat index, external-data locations): a cache that cannot be written only loses it."""
        if self.unwritable is not None:
            return
        with suppress(OSError), self._writing():  # a memo that cannot be written for another reason: not needed
            atomic_write(path, data, self._tmp())

    def raise_if_full(self, needed: int) -> None:
        """``CacheError`` if the cache's file system has less than ``needed`` bytes free (a conversion that
        failed to save its ``.ort`` into a staging dir there: onnxruntime's message does not say why)."""
        if self.root is None:
            return
        with suppress(OSError):
            st = os.statvfs(self.root)
            if st.f_bavail * st.f_frsize < needed:
                self._cannot_write(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
                raise self._unwritable_error("")

    def _tmp(self) -> Path:
        assert self._scratch is not None
        return self._scratch.path

    # -- keys ---------------------------------------------------------------------------------------

    def digest(self, path: Path) -> str:
        """The content digest of ``path`` (``content_digest``), through the stat index when the file is unchanged."""
        if self.root is None:
            return file_digest(path)
        st = path.stat()
        stamp = [st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev, st.st_ctime_ns]
        index = self.root / "stat" / (hashlib.sha256(os.fsencode(path.resolve())).hexdigest() + ".json")
        try:
            rec = json.loads(index.read_text())
            if rec["stamp"] == stamp and DIGEST.fullmatch(rec["blake3"]):
                return str(rec["blake3"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
        if self._before_hashing is not None:
            self._before_hashing()
        with mapped(path) as data:  # what is read: a /proc file's stat says 0 bytes
            digest, read = content_digest(data), len(data)
        if read == st.st_size and stat_stamp(path) == stamp[:3] + stamp[4:]:  # unchanged while hashed: the pair is true
            self._remember(index, json.dumps({"stamp": stamp, "blake3": digest}).encode())
        return digest

    def external_data(self, model: Path, model_digest: str) -> list[str]:
        """Relative locations of the model's external-data files, remembered per model digest."""
        memo = self.root / "stat" / f"external-{model_digest}.json" if self.root else None
        if memo is not None:
            try:
                remembered = json.loads(memo.read_text())
                if isinstance(remembered, list) and all(isinstance(loc, str) for loc in remembered):
                    return remembered
            except (OSError, ValueError):
                pass
        locations = external_data_locations(model)
        if memo is not None:
            self._remember(memo, json.dumps(locations).encode())
        return locations

    def key(self, model: Path, style: str, options: ConvertOptions) -> str:
        """The content key of converting ``model`` with ``options`` in ``style``.

        Digests come from the stat index where it has them; an entry under the key whose manifest names
        other inputs than these files' samples means a record lied (or the entry is not this key's): the
        inputs' records are dropped and the key computed again from the files' bytes.
        """
        key, inputs = self._key(model, style, options)
        proof = inputs_digest(inputs)
        if self.root is not None and recorded_inputs(self._directory(key)) not in (None, proof):
            self._forget(inputs)
            key, inputs = self._key(model, style, options)
        self._inputs[key] = proof
        return key

    def _key(self, model: Path, style: str, options: ConvertOptions) -> tuple[str, list[Path]]:
        model_digest = self.digest(model)
        locations = self.external_data(model, model_digest)
        externals = [external_data_path(model, loc) for loc in locations]
        material = {
            "layout": LAYOUT,
            "analysis": ANALYSIS,
            "plugin": __version__,
            "onnxruntime": onnxruntime_version(),
            "model": model_digest,
            "external": [[loc, self.digest(path)] for loc, path in zip(locations, externals, strict=True)],
            "level": options.optimization_level,
            "style": style,
            "target_platform": options.target_platform,
            "custom_ops": [self.digest(lib) for lib in options.custom_op_libraries],
            "save_optimized_onnx": options.save_optimized_onnx,
        }
        key = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()
        return key, [model, *externals, *options.custom_op_libraries]

    def _forget(self, paths: list[Path]) -> None:
        """Drop the stat-index records of ``paths``."""
        assert self.root is not None
        for path in paths:
            with suppress(OSError):
                (self.root / "stat" / (hashlib.sha256(os.fsencode(path.resolve())).hexdigest() + ".json")).unlink()

    # -- entries ------------------------------------------------------------------------------------

    def get(self, key: str, need: tuple[str, ...] = ()) -> CacheEntry | None:
        """The verified entry for ``key`` (holding the files in ``need`` too); anything else is a miss.

        A missing entry is a plain miss, and so is a key this ``Cache`` did not compute (its inputs are
        unknown). A partial, changed or malformed entry is discarded, and so is one made for another key
        or from other inputs.
        A file that is not a regular file is refused. A file whose (size, mtime, inode, ctime) still
        matches the manifest is trusted; any other is rehashed, and its new stamp recorded when the bytes
        are still the ones the manifest names.
        """
        if self.root is None or key not in self._inputs:
            return None
        directory = self._directory(key)
        try:
            st = directory.lstat()
        except OSError:
            return None
        identity = (st.st_ino, st.st_ctime_ns)
        try:
            if not stat.S_ISDIR(st.st_mode):
                raise ValueError("not a directory")
            manifest = read_manifest(directory, need)
            if manifest.key != key:
                raise ValueError("made for another key")
            if manifest.inputs != self._inputs[key]:
                raise ValueError("made from other inputs")
            restamped = {}
            for name, (digest, stamp) in manifest.files.items():
                current = entry_stamp(directory / name)
                if current != stamp:
                    if file_integrity_digest(directory / name) != digest or entry_stamp(directory / name) != current:
                        raise ValueError(f"{name} changed")
                    restamped[name] = current
            usage_text = read_entry_file(directory / "usage.config").decode("utf-8")
            usage = parse_config(usage_text, str(directory / "usage.config"))
            recorded = parse_value_types(usage_text)
            value_types = frozenset({"unknown"}) if recorded is None else recorded
            graph_types = parse_graph_types(usage_text)
        except (OSError, ValueError, KeyError, TypeError, ConfigError):  # UnicodeDecodeError is a ValueError
            self._discard(key, directory, identity)
            return None
        if restamped:
            self._restamp(key, directory, manifest, restamped)
        if self.unwritable is None and time.time() - st.st_mtime > _TOUCH_AFTER_S:
            with suppress(OSError):
                os.utime(directory)  # its last use, for cache prune (an hour's precision costs no write per hit)
        return CacheEntry(directory, usage, manifest.warnings, value_types, graph_types)

    def _directory(self, key: str) -> Path:
        assert self.root is not None
        if not DIGEST.fullmatch(key):
            raise ValueError(f"not a cache key: {key!r}")
        return self.root / "objects" / key[:2] / key

    def _restamp(self, key: str, directory: Path, manifest: Manifest, new: dict[str, list[int]]) -> None:
        """Record stamps of files just re-verified by hash (a new hard link changes ctime, say)."""
        if self.unwritable is not None:
            return
        with suppress(CacheError, OSError, ValueError, KeyError, TypeError), self.lock(key):
            if read_manifest(directory, ()) != manifest:
                return  # replaced meanwhile: leave it to its publisher
            stamped = {n: (d, new.get(n, s)) for n, (d, s) in manifest.files.items()}
            atomic_write(directory / "manifest.json", manifest._replace(files=stamped).encode(), self._tmp())

    def restamp_own(self, entry: CacheEntry) -> None:
        """Record the current stamps of an entry this run published and then hard-linked outputs to
        (a link changes ctime): the next run trusts it without rehashing."""
        if self.root is None:
            return
        with suppress(OSError, ValueError, KeyError, TypeError):
            manifest = read_manifest(entry.directory, ())
            new = {name: entry_stamp(entry.directory / name) for name in manifest.files}
            self._restamp(entry.directory.name, entry.directory, manifest, new)

    @contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Hold the per-key lock (no-op without a cache dir)."""
        if self.root is None:
            yield
            return
        from filelock import FileLock

        lock = self._locks.get(key)
        if lock is None:  # one instance per key: a FileLock is reentrant, two instances would deadlock
            lock = self._locks[key] = FileLock(self.root / "locks" / f"{key}.lock")
        with self._writing(""):
            lock.acquire()
        try:
            yield
        finally:
            lock.release()

    def staging_dir(self, purpose: str = "") -> Path:
        """A fresh private dir on the cache's filesystem (or the system temp dir without a cache) to convert
        ``purpose`` (a model) into; ``CacheError`` if the cache cannot be written."""
        if self.root is None:
            return Path(tempfile.mkdtemp(prefix="ort-reduced-build-entry-"))
        if self._scratch is None:
            raise self._unwritable_error(purpose)
        with self._writing(purpose):
            return self._scratch.mkdtemp("entry-")

    def put(self, key: str, staging: Path, usage: ModelUsage, digests: dict[str, str]) -> CacheEntry:
        """Publish ``staging`` (files with their integrity digests in ``digests``) as ``key``'s entry.

        ``key`` must come from this ``Cache``'s ``key()``: the manifest records its inputs as they are now.
        ``CacheError`` if the cache cannot be written (a full disk).
        """
        with self._writing(""):
            return self._put(key, staging, usage, digests)

    def _put(self, key: str, staging: Path, usage: ModelUsage, digests: dict[str, str]) -> CacheEntry:
        usage_file = staging / "usage.config"
        header = [format_value_types(usage.value_types), *format_graph_types(usage.graph_types)]
        usage_file.write_text(format_config(usage.config, header), encoding="utf-8")
        warnings = usage.warnings
        digests = {**digests, usage_file.name: file_integrity_digest(usage_file)}
        for name in digests:
            (staging / name).chmod(READ_ONLY)
        files = {name: (digest, entry_stamp(staging / name)) for name, digest in digests.items()}
        inputs = self._inputs.get(key, "")
        (staging / "manifest.json").write_bytes(Manifest(files, warnings, key, inputs).encode())
        if self.root is None:
            return CacheEntry(staging, usage.config, warnings, usage.value_types, usage.graph_types)
        directory = self._directory(key)
        directory.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                staging.rename(directory)
                return CacheEntry(directory, usage.config, warnings, usage.value_types, usage.graph_types)
            except OSError:  # another build published it first: theirs is equal by construction
                existing = self.get(key, tuple(digests))  # (a bad one is discarded here, and the rename retried)
                if existing is not None:
                    shutil.rmtree(staging, ignore_errors=True)
                    return existing
        shutil.rmtree(staging, ignore_errors=True)
        raise CacheError(f"{directory}: cannot publish cache entry")

    def _discard(self, key: str, directory: Path, identity: tuple[int, int]) -> None:
        """Move the bad entry we examined out of the way; not one a concurrent build has published since."""
        if self._scratch is None:
            return
        with suppress(CacheError), self.lock(key):
            try:
                st = directory.lstat()
            except OSError:
                return
            if (st.st_ino, st.st_ctime_ns) != identity:
                return  # replaced since we looked: not the entry we found bad
            trash = self._scratch.mkdtemp("trash-")
            with suppress(OSError):
                directory.rename(trash / "entry")
            shutil.rmtree(trash, ignore_errors=True)
