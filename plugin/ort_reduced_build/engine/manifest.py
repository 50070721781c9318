"""The cache's on-disk entries: the layout version, the files an entry holds, its manifest, file stamps.

An entry is a directory of read-only regular files (``ENTRY_FILES``) and ``manifest.json``: their
xxh3-128 digests and stamps (size, mtime, inode, ctime), the key the entry was made for and a digest of
the inputs' samples. Everything here reads an entry without trusting it: a file that is not a regular
file, a malformed manifest or one naming the wrong files is an ``OSError``/``ValueError`` (a miss).
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from ..util.fileio import integrity_digest, sample_digest
from .config import OpKey, OpsConfig

__all__ = [
    "ANALYSIS",
    "DIGEST",
    "ENTRY_FILES",
    "IN_USE",
    "LAYOUT",
    "READ_ONLY",
    "REQUIRED_FILES",
    "XXH128",
    "CacheEntry",
    "Files",
    "Manifest",
    "entry_stamp",
    "inputs_digest",
    "read_entry_file",
    "read_manifest",
    "recorded_inputs",
    "stat_stamp",
]

LAYOUT = "v3"  # v2: manifests record xxh3-128; v3: content digests are BLAKE3
ANALYSIS = 2
"""What an entry's usage.config records: 2 adds the '# graph types' lines (older entries lack them)."""
ENTRY_FILES = frozenset({"model.ort", "model.optimized.onnx", "usage.config"})
REQUIRED_FILES = frozenset({"model.ort", "usage.config"})
DIGEST = re.compile(r"[0-9a-f]{64}")
"""A key (sha256) or a content digest (BLAKE3-256), in hex."""
XXH128 = re.compile(r"[0-9a-f]{32}")
Files = dict[str, tuple[str, list[int]]]
"""A manifest's files: name -> (xxh3-128, stamp)."""
READ_ONLY = 0o444
"""Entry files' mode: hard-linked outputs share it, so an in-place edit of one output fails."""
IN_USE = "in-use.lock"
"""Held shared by every run (``flock``), exclusively by ``cache prune``/``clear``."""


@dataclass(frozen=True)
class CacheEntry:
    """A verified cache entry: where its files are and the model's usage (parsed)."""

    directory: Path
    usage: OpsConfig
    warnings: tuple[str, ...]
    value_types: frozenset[str]
    graph_types: Mapping[OpKey, frozenset[str]] = field(default_factory=dict)

    @property
    def ort(self) -> Path:
        return self.directory / "model.ort"

    @property
    def optimized_onnx(self) -> Path:
        return self.directory / "model.optimized.onnx"


class Manifest(NamedTuple):
    files: Files
    warnings: tuple[str, ...]
    key: str
    """The key the entry was made for."""
    inputs: str
    """``sample_digest`` of the inputs the key was computed from, in order."""

    def encode(self) -> bytes:
        files = {name: [digest, stamp] for name, (digest, stamp) in sorted(self.files.items())}
        raw = {"key": self.key, "inputs": self.inputs, "files": files, "warnings": list(self.warnings)}
        return json.dumps(raw).encode()


def read_entry_file(path: Path) -> bytes:
    """A small file of an entry; ``OSError`` unless it is a regular file (never through a symlink)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    with os.fdopen(os.open(path, flags), "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise OSError(f"{path.name}: not a regular file")
        return f.read()


def inputs_digest(paths: list[Path]) -> str:
    """What an entry's manifest records of the inputs its key was computed from (their samples, in order)."""
    return integrity_digest("\0".join(sample_digest(p) for p in paths).encode())


def recorded_inputs(directory: Path) -> str | None:
    """The inputs digest the manifest in ``directory`` records; None if there is none to read."""
    try:
        inputs = json.loads(read_entry_file(directory / "manifest.json"))["inputs"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return inputs if isinstance(inputs, str) else None


def read_manifest(directory: Path, need: tuple[str, ...]) -> Manifest:
    """The manifest (files: name -> xxh3-128, stamp); ``ValueError`` if it is malformed."""
    raw = json.loads(read_entry_file(directory / "manifest.json"))
    files, warnings, key, inputs = raw["files"], raw["warnings"], raw["key"], raw["inputs"]
    if not (isinstance(key, str) and DIGEST.fullmatch(key) and isinstance(inputs, str) and XXH128.fullmatch(inputs)):
        raise ValueError("manifest does not say what the entry was made for")
    if not isinstance(files, dict) or not (REQUIRED_FILES | set(need)) <= files.keys() <= ENTRY_FILES:
        raise ValueError("manifest lists the wrong files")
    parsed: Files = {}
    for name, (digest, stamp) in files.items():
        if not (isinstance(digest, str) and XXH128.fullmatch(digest) and isinstance(stamp, list)):
            raise ValueError(f"manifest entry for {name} is malformed")
        parsed[name] = (digest, stamp)
    if not isinstance(warnings, list) or not all(isinstance(w, str) and w.isprintable() for w in warnings):
        raise ValueError("manifest warnings are malformed")
    return Manifest(parsed, tuple(warnings), key, inputs)


def stat_stamp(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]


def entry_stamp(path: Path) -> list[int]:
    """The stamp of a file in an entry, which must be a regular file (never a link out of the cache),
    read-only (an entry published by an older version is made so: its changed ctime gets it rehashed)."""
    st = path.lstat()
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{path.name} is not a regular file")
    if st.st_mode & 0o222:
        with suppress(OSError):  # another user's entry in a shared cache: still usable, as it is
            path.chmod(READ_ONLY)
            st = path.lstat()
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]
