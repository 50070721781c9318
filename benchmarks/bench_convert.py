"""Conversion engine vs ORT's own converter, side by side in one run, same models and options.

    python benchmarks/bench_convert.py [--set bench|large|both] [--repeat N] [--model-dir DIR]

Two generated model sets: ``bench``, an app bundle of 18 mid-sized models (tests/modelgen.py), and
``large``, 39 models where three ~86 MiB ones dominate: a BERT sentence encoder, the same through ORT's
transformer optimizer, an int8 TTS model of 3,600 nodes (tests/modelgen_large.py; ORT's optimizer needs
sympy: ``pip install -e '.[test,bench]'``). For each set, wall time and the peak RSS of the largest process
(``wait4``: the process and the children it waited for, i.e. our workers) for: ORT's
``convert_onnx_models_to_ort``; ours cold (empty cache); ours warm (nothing changed); the largest model alone
through each tool (memory target). Then the sample app's two small models, where start-up dominates. Both
packages are byte-compiled first, as a pip install leaves them.
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
COMMON_ORT = ["--optimization_style", "Fixed", "--enable_type_reduction"]
GENERATORS = {"bench": ["tests.modelgen", "--set", "bench"], "large": ["tests.modelgen_large"]}
Runs = dict[str, list[tuple[float, float, float]]]
"""Per run kind, each repeat's (wall s, CPU s, peak RSS MiB)."""


def measure(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS in MiB of ``cmd`` (and the children it waited for)."""
    os.sync()  # the previous run's writeback would land in this one's time
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{err[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def generate(name: str, models: Path) -> None:
    """Write set ``name`` into ``models`` unless a complete copy is there (``--model-dir``)."""
    done = models / ".complete"
    if done.exists():
        return
    shutil.rmtree(models, ignore_errors=True)
    # Generated in a child process: this one stays small, so ru_maxrss inherited across exec is negligible.
    subprocess.run([sys.executable, "-m", *GENERATORS[name], str(models)], cwd=REPO, check=True, capture_output=True)
    done.touch()


def ort_convert(models: Path, out: Path) -> list[str]:
    return [*ORT, str(models), "--output_dir", str(out), *COMMON_ORT]


def run_set(models: Path, work: Path, repeat: int) -> tuple[Runs, Path]:
    """Each repeat: ORT, ours cold, ours warm back to back; then the largest model alone through each."""
    paths = sorted(models.rglob("*.onnx"))
    largest = max(paths, key=lambda p: p.stat().st_size)
    size_mb = sum(p.stat().st_size for p in paths) / 2**20
    print(
        f"{models.name}: {len(paths)} models, {size_mb:.1f} MiB; largest {largest.relative_to(models)} "
        f"({largest.stat().st_size / 2**20:.1f} MiB); {len(os.sched_getaffinity(0))} CPUs; "
        f"load {os.getloadavg()[0]:.1f}",
        file=sys.stderr,
    )
    rows: Runs = {k: [] for k in ("ort", "cold", "warm", "ort_largest", "ours_largest")}
    for i in range(repeat):
        run = work / f"{models.name}{i}"
        rows["ort"].append(measure(ort_convert(models, run / "ort")))
        cold = [*OURS, "convert", str(models), "-o", str(run / "ours"), "--cache-dir", str(run / "cache")]
        rows["cold"].append(measure(cold))
        rows["warm"].append(measure(cold))
        single = run / "single"
        single.mkdir()
        shutil.copy(largest, single / largest.name)
        rows["ort_largest"].append(measure(ort_convert(single, run / "ol")))
        rows["ours_largest"].append(measure([*OURS, "convert", str(single), "-o", str(run / "sl"), "--no-cache"]))
        shutil.rmtree(run)
    return rows, largest


def speedup(rows: Runs, base: str, key: str, what: int = 0) -> float:
    """Ratios per repeat (each pair ran back to back), then their median: robust to a noisy machine.

    ``what``: 0 compares wall times, 1 CPU times.
    """
    return statistics.median(o[what] / t[what] for o, t in zip(rows[base], rows[key], strict=True))


def report(name: str, rows: Runs, largest: Path) -> None:
    med = {
        k: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v), max(r[2] for r in v))
        for k, v in rows.items()
    }
    cold, warm = speedup(rows, "ort", "cold"), speedup(rows, "ort", "warm")
    largest_ratio = speedup(rows, "ort_largest", "ours_largest")
    table = [
        ("ORT convert_onnx_models_to_ort", med["ort"], 1.0),
        ("ours, cold (empty cache)", med["cold"], cold),
        ("ours, warm (nothing changed)", med["warm"], warm),
        (f"ORT, largest model only ({largest.name})", med["ort_largest"], 1.0),
        ("ours, largest model only", med["ours_largest"], largest_ratio),
    ]
    print(f"\nset {name}: {len(rows['ort'])} repeats")
    print("| run | wall s (median) | speed-up vs ORT (median of the runs' ratios) | CPU s (median) | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|")
    for label, (t, cpu, mem), ratio in table:
        print(f"| {label} | {t:.2f} | {ratio:.2f}x | {cpu:.2f} | {mem:.0f} |")
    print(
        f"cold speed-up {cold:.2f}x (target >= 1.5x; CPU time {speedup(rows, 'ort', 'cold', 1):.2f}x less); "
        f"warm {100 / warm:.1f}% of ORT's time (target <= 10%); "
        f"peak memory, largest model: {med['ours_largest'][2] / med['ort_largest'][2]:.2f}x ORT's (target <= 1.1x)"
    )


def sample_app(work: Path, repeat: int) -> None:
    """The sample app's two small models: start-up dominates."""
    small = REPO / "sample_project/src/sample_app/models"
    rows: Runs = {"ort": [], "ours": []}
    for i in range(repeat):
        rows["ort"].append(measure(ort_convert(small, work / f"os{i}")))
        rows["ours"].append(
            measure([*OURS, "convert", str(small), "-o", str(work / f"ss{i}"), "--cache-dir", str(work / f"cs{i}")])
        )
    print("\nthe sample app's 2 small models, cold")
    print("| run | wall s (median) | speed-up vs ORT | CPU s (median) | peak RSS MiB |\n|---|---:|---:|---:|---:|")
    for label, key in (("ORT", "ort"), ("ours", "ours")):
        t, cpu = (statistics.median(r[i] for r in rows[key]) for i in (0, 1))
        print(
            f"| {label} | {t:.2f} | {speedup(rows, 'ort', key):.2f}x | {cpu:.2f} | {max(r[2] for r in rows[key]):.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=["bench", "large", "both"], default="both", help="model set(s) to run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is shown")
    parser.add_argument(
        "--model-dir", type=Path, help="generate the sets here once and reuse them (default: a temp dir, removed)"
    )
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
    model_dir = args.model_dir or work / "models"
    try:
        for name in ("bench", "large") if args.set == "both" else (args.set,):
            generate(name, model_dir / name)
            rows, largest = run_set(model_dir / name, work, args.repeat)
            report(name, rows, largest)
        sample_app(work, args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
