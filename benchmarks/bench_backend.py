"""The build backend's cost: ``pip wheel`` of the sample app with a warm cache vs the same build without us.

    python benchmarks/bench_backend.py [--repeat N] [--markdown]

Two copies of sample_project/ are built with ``pip wheel --no-deps --no-build-isolation`` (isolation
would add the time of creating build environments, the same for both): one with its own backend,
``ort_reduced_build.backend`` (models converted, or here found in the warm cache, and staged), one with
``build-backend`` switched to plain ``scikit_build_core.build`` (no conversion; its wheel lacks the
models). Each copy is built once to warm the conversion cache and its persistent CMake build dir, then
``--repeat`` times, alternating. Target: ours at most 1.5x plain.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET = 1.5


def build(project: Path, out: Path, env: dict[str, str]) -> float:
    """Seconds for one ``pip wheel`` of ``project``."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        str(out),
        str(project),
    ]
    start = time.perf_counter()
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return seconds


def prepare(work: Path) -> dict[str, Path]:
    ignore = shutil.ignore_patterns("build", "dist")
    ours = Path(shutil.copytree(REPO / "sample_project", work / "ours", ignore=ignore))
    plain = Path(shutil.copytree(REPO / "sample_project", work / "plain", ignore=ignore))
    pyproject = plain / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    text = text.replace('requires = ["ort-reduced-build"]', 'requires = ["scikit-build-core"]')
    text = text.replace('build-backend = "ort_reduced_build.backend"', 'build-backend = "scikit_build_core.build"')
    pyproject.write_text(text, encoding="utf-8")
    return {"ort_reduced_build.backend (warm cache)": ours, "scikit_build_core.build (no conversion)": plain}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="timed builds per variant (default 5)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_backend.") as tmp:
        work = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ORT_REDUCED_BUILD_", "SKBUILD_"))}
        env["ORT_REDUCED_BUILD_CACHE_DIR"] = str(work / "cache")
        variants = prepare(work)
        times: dict[str, list[float]] = {name: [] for name in variants}
        for project in variants.values():
            build(project, work / "out", env)  # warm-up: conversion cache, CMake build dir
        for _ in range(args.repeat):
            for name, project in variants.items():
                times[name].append(build(project, work / "out", env))
    rows = [(name, statistics.median(t), min(t)) for name, t in times.items()]
    plain = rows[1][1]
    if args.markdown:
        print("| build | median s | min s | vs plain |")
        print("|---|---:|---:|---:|")
        for name, median, best in rows:
            print(f"| {name} | {median:.2f} | {best:.2f} | {median / plain:.2f}x |")
    else:
        print(f"{'build':<42} {'median s':>9} {'min s':>7} {'vs plain':>9}")
        for name, median, best in rows:
            print(f"{name:<42} {median:>9.2f} {best:>7.2f} {median / plain:>8.2f}x")
    ratio = rows[0][1] / plain
    print(f"\n{args.repeat} builds each; target <= {TARGET}x: {'met' if ratio <= TARGET else 'MISSED'} ({ratio:.2f}x)")


if __name__ == "__main__":
    main()
