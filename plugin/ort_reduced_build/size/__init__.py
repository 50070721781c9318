"""Where a library's bytes go: ``report`` measures a library (per op kernel, runtime part, section) from
its symbols (``symbols``), the link map (``linkmap``) and the references between its pieces (``xrefs``,
``graph``). ``ort_reduced_build.size`` is a public import path: it keeps the names of ``report``."""

from __future__ import annotations

from .report import (
    SIZES_FILE,
    UNATTRIBUTED,
    OpSize,
    SizeReport,
    link_map_for,
    load_build_sizes,
    measure,
    read_report,
    save_build_sizes,
    toolchain,
)

__all__ = [
    "SIZES_FILE",
    "UNATTRIBUTED",
    "OpSize",
    "SizeReport",
    "link_map_for",
    "load_build_sizes",
    "measure",
    "read_report",
    "save_build_sizes",
    "toolchain",
]
