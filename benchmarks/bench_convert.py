"""Conversion engine vs ORT's own converter, side by side in one run, same models and options.

    python benchmarks/bench_convert.py [--repeat N] [--markdown]

Measures wall time and the peak RSS of the largest process (``wait4``: the process and the children it
waited for, i.e. our workers) for: ORT's ``convert_onnx_models_to_ort``; ours cold (empty cache); ours
warm (nothing changed); the largest model alone through each tool (memory target); and the sample
app's two small models, where start-up dominates. Both packages are byte-compiled first, as a pip
install leaves them.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

ORT = [sys.executable, "-m", "onnxruntime.tools.convert_onnx_models_to_ort"]
OURS = [sys.executable, "-m", "ort_reduced_build"]


def measure(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS in MiB of ``cmd`` (and the children it waited for)."""
    os.sync()  # the previous run's writeback would land in this one's time
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{err[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is shown")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args()

    # Both tools as pip installs them: byte-compiled. onnxruntime's wheel install compiled it; a source
    # checkout of ours may not be (an editable install, PYTHONDONTWRITEBYTECODE): every process of every run
    # would compile the package again, a cost no installed copy has.
    for name in ("ort_reduced_build", "onnxruntime"):
        spec = importlib.util.find_spec(name)
        assert spec is not None, name
        assert spec.submodule_search_locations, name
        compileall.compile_dir(spec.submodule_search_locations[0], quiet=1)
    work = Path(tempfile.mkdtemp(prefix="ort-rb-bench-"))
    try:
        models = work / "models"
        # Generated in a child process: this one stays small, so ru_maxrss inherited across exec is negligible.
        subprocess.run(
            [sys.executable, "-m", "tests.modelgen", str(models), "--set", "bench"],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        paths = sorted(models.rglob("*.onnx"))
        largest = max(paths, key=lambda p: p.stat().st_size)
        size_mb = sum(p.stat().st_size for p in paths) / 2**20
        print(
            f"{len(paths)} models, {size_mb:.1f} MiB; largest {largest.name} "
            f"({largest.stat().st_size / 2**20:.1f} MiB); {os.cpu_count()} CPUs",
            file=sys.stderr,
        )
        common_ort = ["--optimization_style", "Fixed", "--enable_type_reduction"]
        rows: dict[str, list[tuple[float, float]]] = {
            k: [] for k in ("ort", "cold", "warm", "ort_largest", "ours_largest", "ort_small", "ours_small")
        }
        small = REPO / "sample_project/src/sample_app/models"  # a small app: two models, start-up dominates
        for i in range(args.repeat):
            cache = work / f"cache{i}"
            rows["ort"].append(measure([*ORT, str(models), "--output_dir", str(work / f"ort{i}"), *common_ort]))
            cold = [*OURS, "convert", str(models), "-o", str(work / f"ours{i}"), "--cache-dir", str(cache)]
            rows["cold"].append(measure(cold))
            rows["warm"].append(measure(cold))
            single = work / f"single{i}"
            single.mkdir()
            shutil.copy(largest, single / largest.name)
            rows["ort_largest"].append(measure([*ORT, str(single), "--output_dir", str(work / f"ol{i}"), *common_ort]))
            rows["ours_largest"].append(
                measure([*OURS, "convert", str(single), "-o", str(work / f"sl{i}"), "--no-cache"])
            )
            rows["ort_small"].append(measure([*ORT, str(small), "--output_dir", str(work / f"os{i}"), *common_ort]))
            rows["ours_small"].append(
                measure([*OURS, "convert", str(small), "-o", str(work / f"ss{i}"), "--cache-dir", str(work / f"cs{i}")])
            )
        med = {k: (statistics.median(t for t, _ in v), max(m for _, m in v)) for k, v in rows.items()}
        # Ratios per repeat (each pair ran back to back), then their median: robust to a noisy machine.
        ratio = {
            k: statistics.median(o / t for (o, _), (t, _) in zip(rows[base], rows[k], strict=True))
            for k, base in (("cold", "ort"), ("warm", "ort"), ("ours_small", "ort_small"))
        }
        ort_t, ort_m = med["ort"]
        table = [
            ("ORT convert_onnx_models_to_ort", ort_t, 1.0, ort_m),
            ("ours, cold (empty cache)", med["cold"][0], ratio["cold"], med["cold"][1]),
            ("ours, warm (nothing changed)", med["warm"][0], ratio["warm"], med["warm"][1]),
            (f"ORT, largest model only ({largest.name})", med["ort_largest"][0], None, med["ort_largest"][1]),
            ("ours, largest model only", med["ours_largest"][0], None, med["ours_largest"][1]),
            ("ORT, the sample app's 2 small models", med["ort_small"][0], 1.0, med["ort_small"][1]),
            ("ours, the same, cold", med["ours_small"][0], ratio["ours_small"], med["ours_small"][1]),
        ]
        print("| run | wall s (median) | speed-up vs ORT (median of the runs' ratios) | peak RSS MiB |")
        print("|---|---:|---:|---:|")
        for name, t, speedup, mem in table:
            print(f"| {name} | {t:.2f} | {f'{speedup:.2f}x' if speedup else ''} | {mem:.0f} |")
        print()
        print(
            f"cold speed-up {ratio['cold']:.2f}x (target >= 1.5x); "
            f"warm {100 / ratio['warm']:.1f}% of ORT's time (target <= 10%); "
            f"peak memory, largest model: {med['ours_largest'][1] / med['ort_largest'][1]:.2f}x ORT's "
            "(target <= 1.1x)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
