"""Outputs that did not change keep their mtime, so build tools do not rebuild their dependents."""

from __future__ import annotations

import os
from pathlib import Path

from ort_reduced_build.util.fileio import atomic_copy, atomic_write

OLD = 1_000_000_000  # an mtime far in the past, in seconds


def _age(path: Path) -> None:
    os.utime(path, (OLD, OLD))


def test_atomic_write_keeps_identical_file(tmp_path: Path) -> None:
    out = tmp_path / "a.config"
    atomic_write(out, b"ai.onnx;17;Add\n")
    _age(out)
    atomic_write(out, b"ai.onnx;17;Add\n")
    assert out.stat().st_mtime == OLD
    atomic_write(out, b"ai.onnx;17;Add,Mul\n")
    assert out.read_bytes() == b"ai.onnx;17;Add,Mul\n"
    assert out.stat().st_mtime != OLD


def test_atomic_copy_keeps_identical_file(tmp_path: Path) -> None:
    src, dst = tmp_path / "src.ort", tmp_path / "out" / "dst.ort"
    src.write_bytes(b"\0\0\0\0ORTM" + b"x" * 100)
    atomic_copy(src, dst)
    _age(dst)
    atomic_copy(src, dst)
    assert dst.stat().st_mtime == OLD
    src.write_bytes(b"\0\0\0\0ORTM" + b"y" * 100)  # same size, other bytes
    atomic_copy(src, dst)
    assert dst.read_bytes() == src.read_bytes()
    assert not list(dst.parent.glob(".*.tmp"))
