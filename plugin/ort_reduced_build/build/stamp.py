"""The build directory's stamp ``ort-reduced-build.json``: what the last build there made, and from what.

``run`` skips build.py when the build directory holds a build of the same config *content* (comments
ignored) and the same command: the stamp is keyed on their sha256 (``stamp_key``). It also records the
library's size, the size before, and the LTO builds of a config that did not run its models.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..engine.config import OpKey, OpsConfig, format_config, format_graph_types
from ..errors import BuildError
from ..util.fileio import atomic_write

__all__ = ["STAMP", "library_size", "read_stamp", "recorded_int", "stamp_key", "write_stamp"]

STAMP = "ort-reduced-build.json"


def library_size(path: Path) -> int:
    """Bytes of a library file, or of the library a build directory's stamp records."""
    if path.is_dir():
        try:
            return int(json.loads((path / STAMP).read_text())["library_bytes"])
        except (OSError, ValueError, KeyError, TypeError):
            raise BuildError(f"{path}: no ort-reduced-build build here ({STAMP} missing or unreadable)") from None
    try:
        return path.stat().st_size
    except OSError as exc:
        raise BuildError(f"{path}: cannot read library size: {exc.strerror}") from None


def stamp_key(config: OpsConfig, argv: Sequence[str], extra: Mapping[OpKey, frozenset[str]]) -> str:
    # Comments (the model list) do not change the kernels: only the formatted content counts, and the
    # graph types when the extra type reduction uses them.
    material: dict[str, object] = {"config": format_config(config), "command": list(argv[1:])}
    if extra:
        material["graph_types"] = format_graph_types(extra)
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def read_stamp(build_dir: Path) -> dict[str, object]:
    """What the last build in ``build_dir`` recorded (empty when none)."""
    try:
        data = json.loads((build_dir / STAMP).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def recorded_int(value: object) -> int | None:
    """A size the stamp records; None when it records none (or not a number)."""
    return value if isinstance(value, int) else None


def write_stamp(build_dir: Path, stamp: Mapping[str, object]) -> None:
    """Replace the stamp in ``build_dir`` (atomically: a reader sees the old one or the new one)."""
    atomic_write(build_dir / STAMP, json.dumps(stamp, indent=1).encode())
