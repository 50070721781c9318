"""What a model change costs: rebuilds of the reduced runtime in the same build directory, and in a fresh
one whose compiler cache is warm (a new CI runner sharing the cache), against the cold build.

    python benchmarks/bench_rebuild.py --ort-source DIR [--deps-dir DIR] --work DIR
        [--only add,fresh-same,...] [--plot FILE] [--explain-misses] [-- BUILD_ARG...]

Every build is ``ort-reduced-build build --compiler-cache ccache --no-verify`` (the default flags, LTO on;
arguments after ``--`` are added) with a private ``CCACHE_DIR`` under ``--work``, so the cold build
is cold. The base config is written from the sample app's two models plus a one-op model (Relu);
each scenario changes it:

* ``cold``: the base config, empty build directory and cache; ``noop``: the same build again;
* ``add``: +1 model with one op the base lacks (Sigmoid); ``remove``: -1 model (the Relu one);
* ``types``: +1 model that needs only a new type of an op the base has (Softmax on double);
* ``flags``: the base config with other ORT flags (``--minimal-build extended``).

Each scenario but ``cold`` and ``noop`` runs in the same directory (restored to the base build first)
and, as ``fresh-<scenario>``, in a fresh directory (``fresh-same``: the base config); every one starts
from the compiler cache as the cold build left it. Measured per build: the compile steps ninja ran
(new ``.ninja_log`` entries for object files), ccache's hits and misses (``--print-stats`` deltas),
the link of the library (``.ninja_log``), the wall time. ``--explain-misses`` lists, per build, the
sources ccache missed (its log file). Results: a markdown table on stdout, ``<work>/rebuild.json``, and
with ``--plot`` an SVG bar chart. Targets: same directory +1 model <= 5 % of the cold wall time; fresh
directory <= 15 % for the same config and <= 20 % after +1 model.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SAMPLE_MODELS = REPO / "sample_project" / "src" / "sample_app" / "models"
CCACHE_DIR = "ccache"

CONFIGS = {  # config -> (extra models, models left out of the base set)
    "base": ((), ()),
    "add": (("sigmoid",), ()),
    "remove": ((), ("relu",)),
    "types": (("softmax_double",), ()),
}
SCENARIOS = {  # scenario -> (config, fresh directory, extra build flags)
    "cold": ("base", False, ()),
    "noop": ("base", False, ()),
    "fresh-same": ("base", True, ()),
    **{name: (name, False, ()) for name in ("add", "remove", "types")},
    **{f"fresh-{name}": (name, True, ()) for name in ("add", "remove", "types")},
    "flags": ("base", False, ("--minimal-build", "extended")),
    "fresh-flags": ("base", True, ("--minimal-build", "extended")),
}
TARGETS = {"add": 0.05, "fresh-same": 0.15, "fresh-add": 0.20}


@dataclass(frozen=True)
class Row:
    scenario: str
    fresh: bool
    compiles: int
    hits: int
    remote_hits: int
    misses: int
    link_s: float
    wall_s: float
    missed: tuple[str, ...] = ()


def one_op_model(path: Path, op: str, elem: int, **attrs: int) -> None:
    import onnx
    from onnx import helper

    graph = helper.make_graph(
        [helper.make_node(op, ["x"], ["y"], **attrs)],  # type: ignore[arg-type]  # onnx types attributes as Any
        op.lower(),
        [helper.make_tensor_value_info("x", elem, [1, 8])],
        [helper.make_tensor_value_info("y", elem, [1, 8])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def write_configs(work: Path) -> dict[str, Path]:
    """The scenarios' configs, written by ``ort-reduced-build config`` from their models."""
    from onnx import TensorProto

    models = work / "models"
    extra = {"relu": ("Relu", TensorProto.FLOAT), "sigmoid": ("Sigmoid", TensorProto.FLOAT)}
    extra["softmax_double"] = ("Softmax", TensorProto.DOUBLE)
    for name, (op, elem) in extra.items():
        one_op_model(models / f"{name}.onnx", op, elem)
    for sample in sorted(SAMPLE_MODELS.glob("*.onnx")):
        shutil.copyfile(sample, models / sample.name)
    base = [*sorted(SAMPLE_MODELS.glob("*.onnx")), models / "relu.onnx"]
    configs = {}
    for name, (plus, minus) in CONFIGS.items():
        chosen = [models / p.name for p in base if p.stem not in minus] + [models / f"{m}.onnx" for m in plus]
        configs[name] = work / "configs" / f"{name}.config"
        cli = [sys.executable, "-m", "ort_reduced_build", "config", *map(str, chosen), "-o", str(configs[name])]
        subprocess.run(cli, check=True, stdout=subprocess.DEVNULL)
    return configs


def ninja_log(build_dir: Path) -> dict[str, tuple[int, int, str]]:
    """Output -> (start ms, end ms, rest) of its latest ``.ninja_log`` entry."""
    entries: dict[str, tuple[int, int, str]] = {}
    log = build_dir / "MinSizeRel" / ".ninja_log"
    for line in log.read_text().splitlines() if log.is_file() else ():
        parts = line.split("\t")
        if len(parts) == 5 and not line.startswith("#"):
            entries[parts[3]] = (int(parts[0]), int(parts[1]), parts[2] + parts[4])
    return entries


def ccache(env: dict[str, str], *args: str) -> str:
    return subprocess.run(["ccache", *args], env=env, check=True, capture_output=True, text=True).stdout


def missed_sources(log: Path) -> tuple[str, ...]:
    """The sources ccache's log says it missed (one block of lines per process id)."""
    source: dict[str, str] = {}
    missed = set()
    pattern = re.compile(r"^\[\S+ +(\d+) *\] (Source file|Result): (.*)$")  # ccache pads short pids
    for line in log.read_text(errors="replace").splitlines() if log.is_file() else ():
        if (m := pattern.match(line)) is None:
            continue
        pid, what, value = m.groups()
        if what == "Source file":
            source[pid] = value
        elif value == "cache_miss" and pid in source:
            missed.add(source[pid])
    return tuple(sorted(missed))


def copy_tree(source: Path, target: Path) -> None:
    """``target`` replaced by a copy of ``source``, mtimes included (``cp -a``): a build directory copied
    back to the same path is the build it was."""
    shutil.rmtree(target, ignore_errors=True)
    subprocess.run(["cp", "-a", str(source), str(target)], check=True)


def measure(args: argparse.Namespace, scenario: str, config: Path, build_dir: Path) -> Row:
    """One ``build`` of ``config`` in ``build_dir``, with the cache's statistics zeroed first."""
    _, fresh, flags = SCENARIOS[scenario]
    env = {**os.environ, "CCACHE_DIR": str(args.work / CCACHE_DIR), "CCACHE_CONFIGPATH": str(args.work / "ccache.conf")}
    log = args.work / "logs" / f"{scenario}.ccache.log"
    if args.explain_misses:
        log.parent.mkdir(exist_ok=True)
        log.unlink(missing_ok=True)
        env["CCACHE_LOGFILE"] = str(log)
    ccache(env, "-z")
    before = ninja_log(build_dir)
    argv = [sys.executable, "-m", "ort_reduced_build", "build", "--ort-source", str(args.ort_source)]
    argv += ["--config", str(config), "--build-dir", str(build_dir), "--compiler-cache", "ccache", "--no-verify"]
    argv += [*(["--deps-dir", str(args.deps_dir)] if args.deps_dir else []), *flags, *args.build_args]
    start = time.perf_counter()
    with (args.work / "logs" / f"{scenario}.log").open("w") as out:
        subprocess.run(argv, env=env, check=True, stdout=out, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    ran = {o: e for o, e in ninja_log(build_dir).items() if before.get(o) != e}
    stats = {k: int(v) for k, v in (ln.split("\t") for ln in ccache(env, "--print-stats").splitlines() if "\t" in ln)}
    return Row(
        scenario=scenario,
        fresh=fresh,
        compiles=sum(o.endswith((".o", ".obj")) for o in ran),
        hits=stats["direct_cache_hit"] + stats["preprocessed_cache_hit"],
        remote_hits=stats["remote_storage_hit"],
        misses=stats["cache_miss"],
        link_s=sum(e[1] - e[0] for o, e in ran.items() if Path(o).name.startswith("libonnxruntime.so")) / 1000,
        wall_s=round(wall, 1),
        missed=missed_sources(log) if args.explain_misses else (),
    )


def run(args: argparse.Namespace, configs: dict[str, Path], chosen: list[str]) -> list[Row]:
    """Cold first (or the snapshots of an earlier run), then each chosen scenario from those snapshots."""
    same, snap_same, snap_cache = args.work / "same", args.work / "snapshot-same", args.work / "snapshot-ccache"
    rows = []
    if "cold" in chosen or not snap_cache.is_dir():
        for path in (same, args.work / CCACHE_DIR, snap_same, snap_cache):
            shutil.rmtree(path, ignore_errors=True)
        rows.append(measure(args, "cold", configs["base"], same))
        print(f"cold: {rows[-1]}", file=sys.stderr, flush=True)
        copy_tree(same, snap_same)
        copy_tree(args.work / CCACHE_DIR, snap_cache)
    for scenario in chosen:
        if scenario == "cold":
            continue
        config, fresh, _ = SCENARIOS[scenario]
        copy_tree(snap_cache, args.work / CCACHE_DIR)
        build_dir = args.work / f"fresh-{scenario}" if fresh else same
        if fresh:
            shutil.rmtree(build_dir, ignore_errors=True)
        else:
            copy_tree(snap_same, same)
        rows.append(measure(args, scenario, configs[config], build_dir))
        print(f"{scenario}: {rows[-1]}", file=sys.stderr, flush=True)
        if fresh:
            shutil.rmtree(build_dir, ignore_errors=True)
    return rows


def table(rows: list[Row], cold: float) -> str:
    lines = [
        "| scenario | directory | compile steps | ccache hits (remote) | misses | link | wall | of cold |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        target = f" (target {TARGETS[r.scenario]:.0%})" if r.scenario in TARGETS else ""
        lines.append(
            f"| {r.scenario} | {'fresh' if r.fresh else 'same'} | {r.compiles} | {r.hits} ({r.remote_hits}) | "
            f"{r.misses} | {r.link_s:.0f} s | {minutes(r.wall_s)} | {r.wall_s / cold:.1%}{target} |"
        )
    return "\n".join(lines)


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:02.0f} s" if seconds >= 60 else f"{seconds:.0f} s"


def svg(rows: list[Row], cold: float) -> str:
    """Horizontal bars: wall minutes per scenario (same directory blue, fresh orange), share of cold."""
    width, left, bar, gap = 680, 150, 18, 8
    scale = (width - left - 140) / max(r.wall_s for r in rows)
    height = 46 + len(rows) * (bar + gap) + 10
    out = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
            'font-size="12">'
        ),
        (
            '<text x="10" y="20" font-size="14" font-weight="bold">Rebuild wall time (blue: same directory; '
            "orange: fresh directory, warm ccache)</text>"
        ),
    ]
    for i, r in enumerate(rows):
        y = 36 + i * (bar + gap)
        color = "#e08a2c" if r.fresh else "#2a7ab9"
        out.append(f'<text x="{left - 8}" y="{y + 13}" text-anchor="end">{r.scenario}</text>')
        out.append(f'<rect x="{left}" y="{y}" width="{max(1.0, r.wall_s * scale):.1f}" height="{bar}" fill="{color}"/>')
        label = f"{minutes(r.wall_s)} ({r.wall_s / cold:.0%})"
        out.append(f'<text x="{left + r.wall_s * scale + 6:.1f}" y="{y + 13}">{label}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ort-source", type=Path, required=True, help="ONNX Runtime source tree")
    parser.add_argument("--deps-dir", type=Path, help="ORT's dependency sources (offline build)")
    parser.add_argument("--work", type=Path, required=True, help="build directories, cache and results go here")
    parser.add_argument("--only", help=f"comma-separated scenarios (default: all): {', '.join(SCENARIOS)}")
    parser.add_argument("--plot", type=Path, help="write an SVG bar chart here")
    parser.add_argument("--explain-misses", action="store_true", help="list the sources ccache missed per build")
    parser.add_argument("build_args", nargs="*", metavar="-- BUILD_ARG", help="more `build` arguments")
    args = parser.parse_args()
    chosen = args.only.split(",") if args.only else list(SCENARIOS)
    if unknown := sorted(set(chosen) - set(SCENARIOS)):
        parser.error(f"unknown scenarios {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    if shutil.which("ccache") is None:
        parser.error("needs ccache on PATH")
    args.work = args.work.resolve()
    (args.work / "logs").mkdir(parents=True, exist_ok=True)
    (args.work / "ccache.conf").write_text("max_size = 20G\n")
    results = args.work / "rebuild.json"
    earlier = {r["scenario"]: Row(**{**r, "missed": tuple(r["missed"])}) for r in _load(results)}
    rows = run(args, write_configs(args.work), [s for s in SCENARIOS if s in chosen])
    merged = {**earlier, **{r.scenario: r for r in rows}}
    ordered = [merged[s] for s in SCENARIOS if s in merged]
    results.write_text(json.dumps([asdict(r) for r in ordered], indent=1) + "\n")
    cold = merged["cold"].wall_s
    print(table(ordered, cold))
    for r in ordered:
        if r.missed:
            print(f"\n{r.scenario}: ccache missed {len(r.missed)}: " + ", ".join(r.missed[:40]))
    if args.plot:
        args.plot.write_text(svg(ordered, cold), encoding="utf-8")
        print(f"wrote {args.plot}", file=sys.stderr)


def _load(path: Path) -> list[dict[str, Any]]:
    try:
        return list(json.loads(path.read_text()))
    except (OSError, ValueError):
        return []


if __name__ == "__main__":
    main()
