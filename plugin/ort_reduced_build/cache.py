"""Content-addressed conversion cache, safe to share between concurrent builds.

Key: sha256 of the model bytes, its external-data files' bytes, the conversion options, the onnxruntime
and plugin versions, and the custom-op libraries' bytes. Value: the ``.ort`` bytes (plus the optional
optimized ONNX) and the model's usage as config text, with a manifest of their sha256 so a changed
entry is detected and rebuilt, never used.

Entries are built in a private temp dir and published with one ``rename``; a file lock per key keeps
two builds from converting the same model at once. A stat index (size, mtime, inode -> sha256)
spares rehashing unchanged files, so the warm path imports neither onnx nor onnxruntime.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from ._fileio import atomic_write, file_digest
from ._version import __version__
from .errors import CacheError
from .settings import ConvertOptions

__all__ = ["Cache", "CacheEntry", "default_cache_dir"]

_LAYOUT = "v1"


def default_cache_dir() -> Path:
    """``$ORT_REDUCED_BUILD_CACHE_DIR``, else the user cache dir (platformdirs)."""
    env = os.environ.get("ORT_REDUCED_BUILD_CACHE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("ort-reduced-build", appauthor=False))


@dataclass(frozen=True)
class CacheEntry:
    """A verified cache entry: where its files are and the usage text."""

    directory: Path
    usage_text: str
    warnings: tuple[str, ...]

    @property
    def ort(self) -> Path:
        return self.directory / "model.ort"

    @property
    def optimized_onnx(self) -> Path:
        return self.directory / "model.optimized.onnx"


class Cache:
    """A cache directory. ``Cache(None)`` hashes nothing to disk and stores nothing (``--no-cache``)."""

    def __init__(self, root: Path | None) -> None:
        self.root = root / _LAYOUT if root is not None else None
        if self.root is not None:
            try:
                for sub in ("objects", "stat", "tmp", "locks"):
                    (self.root / sub).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CacheError(f"{root}: cannot use as cache directory: {exc.strerror}") from None

    # -- keys ---------------------------------------------------------------------------------------

    def digest(self, path: Path) -> str:
        """sha256 of ``path``, through the stat index when the file is unchanged."""
        st = path.stat()
        if self.root is None:
            return file_digest(path)
        stamp = [st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev]
        index = self.root / "stat" / (hashlib.sha256(os.fsencode(path.resolve())).hexdigest() + ".json")
        try:
            rec = json.loads(index.read_text())
            if rec["stamp"] == stamp:
                return str(rec["sha256"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
        digest = file_digest(path)
        atomic_write(index, json.dumps({"stamp": stamp, "sha256": digest}).encode(), self.root / "tmp")
        return digest

    def external_data(self, model: Path, model_digest: str) -> list[str]:
        """Relative locations of the model's external-data files, remembered per model digest."""
        memo = self.root / "stat" / f"external-{model_digest}.json" if self.root else None
        if memo is not None:
            try:
                return list(json.loads(memo.read_text()))
            except (OSError, ValueError):
                pass
        locations = external_data_locations(model)
        if memo is not None and self.root is not None:
            atomic_write(memo, json.dumps(locations).encode(), self.root / "tmp")
        return locations

    def key(self, model: Path, style: str, options: ConvertOptions) -> str:
        """The content key of converting ``model`` with ``options`` in ``style``."""
        model_digest = self.digest(model)
        material = {
            "layout": _LAYOUT,
            "plugin": __version__,
            "onnxruntime": _onnxruntime_version(),
            "model": model_digest,
            "external": [[loc, self.digest(model.parent / loc)] for loc in self.external_data(model, model_digest)],
            "level": options.optimization_level,
            "style": style,
            "target_platform": options.target_platform,
            "custom_ops": [self.digest(lib) for lib in options.custom_op_libraries],
            "save_optimized_onnx": options.save_optimized_onnx,
        }
        return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()

    # -- entries ------------------------------------------------------------------------------------

    def get(self, key: str) -> CacheEntry | None:
        """The verified entry for ``key``; a missing, partial or changed entry reads as a miss.

        A file whose (size, mtime, inode) still matches the manifest is trusted; any other is rehashed.
        """
        if self.root is None:
            return None
        directory = self.root / "objects" / key[:2] / key
        try:
            manifest = json.loads((directory / "manifest.json").read_text())
            for name, (digest, stamp) in manifest["files"].items():
                path = directory / name
                if _stamp(path) != stamp and file_digest(path) != digest:
                    raise ValueError(name)
            return CacheEntry(
                directory, (directory / "usage.config").read_text(encoding="utf-8"), tuple(manifest["warnings"])
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            self._discard(directory)
            return None

    @contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Hold the per-key lock (no-op without a cache dir)."""
        if self.root is None:
            yield
            return
        from filelock import FileLock

        with FileLock(self.root / "locks" / f"{key}.lock"):
            yield

    def staging_dir(self) -> Path:
        """A fresh private dir on the cache's filesystem (or the system temp dir without a cache)."""
        base = self.root / "tmp" if self.root is not None else None
        return Path(tempfile.mkdtemp(prefix="entry-", dir=base))

    def put(
        self, key: str, staging: Path, usage_text: str, warnings: tuple[str, ...], digests: dict[str, str]
    ) -> CacheEntry:
        """Publish ``staging`` (files with their sha256 in ``digests``) as ``key``'s entry."""
        usage = staging / "usage.config"
        usage.write_text(usage_text, encoding="utf-8")
        digests = {**digests, usage.name: file_digest(usage)}
        files = {name: [digest, _stamp(staging / name)] for name, digest in sorted(digests.items())}
        (staging / "manifest.json").write_text(json.dumps({"files": files, "warnings": list(warnings)}))
        if self.root is None:
            return CacheEntry(staging, usage_text, warnings)
        directory = self.root / "objects" / key[:2] / key
        directory.parent.mkdir(parents=True, exist_ok=True)
        try:
            staging.rename(directory)
        except OSError:  # another build published it first: theirs is equal by construction
            shutil.rmtree(staging, ignore_errors=True)
            existing = self.get(key)
            if existing is not None:
                return existing
            raise CacheError(f"{directory}: cannot publish cache entry") from None
        return CacheEntry(directory, usage_text, warnings)

    def _discard(self, directory: Path) -> None:
        if self.root is None:
            return
        trash = Path(tempfile.mkdtemp(prefix="trash-", dir=self.root / "tmp"))
        with suppress(OSError):
            directory.rename(trash / "entry")
        shutil.rmtree(trash, ignore_errors=True)


def _onnxruntime_version() -> str:
    """The installed onnxruntime's version, from its metadata (importing it would cost a second)."""
    from importlib import metadata

    return metadata.version("onnxruntime")


def _stamp(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def external_data_locations(model: Path) -> list[str]:
    """Sorted external-data locations a model's tensors name (parses the protobuf only if needed)."""
    with model.open("rb") as f:
        if model.stat().st_size == 0:
            return []
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as view:
            if view.find(b"location") < 0:
                return []
    import onnx

    proto = onnx.load(str(model), load_external_data=False)
    locations: set[str] = set()
    graphs = [proto.graph]
    while graphs:
        graph = graphs.pop()
        tensors = list(graph.initializer) + [s.values for s in graph.sparse_initializer]
        for node in graph.node:
            for attr in node.attribute:
                tensors.extend([attr.t, *attr.tensors])
                graphs.extend([attr.g, *attr.graphs] if attr.HasField("g") else attr.graphs)
        for tensor in tensors:
            if tensor.data_location == onnx.TensorProto.EXTERNAL:
                locations.update(e.value for e in tensor.external_data if e.key == "location")
    return sorted(locations)
