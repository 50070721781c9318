"""Comparing an output of the built library with the reference's: the largest absolute and relative
difference, and whether every element is within the tolerances (NaN equals NaN; strings compare exactly;
maps and sequences element by element)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["OutputDiff", "compare"]


@dataclass(frozen=True)
class OutputDiff:
    """One output compared: the largest absolute and relative difference (0 for equal strings)."""

    name: str
    max_abs_diff: float
    max_rel_diff: float
    ok: bool


def compare(name: str, got: object, want: object, rtol: float, atol: float) -> OutputDiff:
    """One output of the built library against the reference's."""
    worst = [0.0, 0.0]
    ok = _compare(got, want, rtol, atol, worst)
    return OutputDiff(name, worst[0], worst[1], ok)


def _compare(got: object, want: object, rtol: float, atol: float, worst: list[float]) -> bool:
    if isinstance(want, dict):
        if not isinstance(got, dict) or set(map(str, got)) != set(map(str, want)):
            worst[0] = worst[1] = math.inf
            return False
        by_key = {str(k): v for k, v in got.items()}
        return all(_compare(by_key[str(k)], v, rtol, atol, worst) for k, v in want.items())
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            worst[0] = worst[1] = math.inf
            return False
        return all(_compare(g, w, rtol, atol, worst) for g, w in zip(got, want, strict=True))
    g, w = np.asarray(got), np.asarray(want)
    if isinstance(got, (list, dict)) or g.shape != w.shape:
        worst[0] = worst[1] = math.inf
        return False
    if w.dtype.kind in "OUS" or g.dtype.kind in "OUS":
        equal = bool(np.array_equal(g.astype(str), w.astype(str)))
        if not equal:
            worst[0] = worst[1] = math.inf
        return equal
    g64, w64 = g.astype(np.float64), w.astype(np.float64)
    both_nan = np.isnan(g64) & np.isnan(w64)
    diff = np.where(both_nan, 0.0, np.abs(g64 - w64))
    if diff.size:
        worst[0] = max(worst[0], float(np.nanmax(np.where(np.isnan(diff), np.inf, diff))))
        rel = diff / np.maximum(np.abs(w64), np.finfo(np.float64).tiny)
        worst[1] = max(worst[1], float(np.max(np.where(diff == 0, 0.0, rel))))
    return bool(np.all(both_nan | np.isclose(g64, w64, rtol=rtol, atol=atol)))
