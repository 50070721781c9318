"""Size of the minimal ONNX Runtime built for the sample project's models, where its bytes go, and what the
extra type reduction and the opt-in profiles change.

    python benchmarks/bench_size.py --ort-source DIR [--deps-dir DIR] --build-dir DIR
        [--profile DIR=ARGS]... [--svg FILE] [--parts-svg FILE]
    python benchmarks/bench_size.py --library PATH [--svg FILE]      (measure a library already built)

Writes the sample's config with ``ort-reduced-build config``, then builds it with ``ort-reduced-build
build`` twice in ``BUILD_DIR``: with ``--no-extra-type-reduction`` (ORT's own type reduction only)
and with the defaults (the extra type reduction on). Each build ends by running the sample's models on
its library; ``verify`` then compares every output with onnxruntime. ``size`` attributes each library's
bytes; the table gives the library, TreeEnsembleClassifier's figure and the share of .text+.rodata given
to operators or named parts, and the targets: the default build at most 1.6 MB with every model ok,
>= 90 % named, and TreeEnsembleClassifier's figure before/after matching the library's difference within
10 %. ``--profile DIR=ARGS`` adds a build of the same config in DIR (named after it in the table) with more
``build`` arguments, e.g. ``b-mobile="-- --disable_exceptions"`` or ``b-ext="--minimal-build extended"``.
``--svg`` draws the sizes next to the issue's reference points; ``--parts-svg`` the default build's
operators and parts.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE_MODELS = REPO / "sample_project" / "src" / "sample_app" / "models"
TARGET = 1_600_000
TREE = "ai.onnx.ml:TreeEnsembleClassifier"
REFERENCES = [  # measured on x86-64 Linux, recorded in the issue
    ("PyPI onnxruntime, full", 34_800_000),
    ("minimal build, all operators", 8_700_000),
    ("ORT's reduced build, a 4-op model", 2_600_000),
]
CLI = [sys.executable, "-m", "ort_reduced_build"]


def build(args: argparse.Namespace, config: Path, directory: Path, extra: list[str]) -> dict[str, object]:
    """One build of the sample's config, its size report and its verify report."""
    command = [*CLI, "build", "--ort-source", str(args.ort_source), "--config", str(config)]
    command += ["--build-dir", str(directory), *(["--deps-dir", str(args.deps_dir)] if args.deps_dir else [])]
    command += [f"--compiler-launcher={launcher}" for launcher in args.compiler_launcher]
    subprocess.run([*command, *extra], check=True)
    size = _json([*CLI, "size", "--build-dir", str(directory), "--json"])
    verify = _json([*CLI, "verify", "--build-dir", str(directory), "--json"])  # exit 1 unless every model is ok
    return {"size": size, "models": {m["path"]: m["status"] for m in verify["models"]}}  # type: ignore[attr-defined]


def _json(argv: list[str]) -> dict[str, object]:
    """A verb's ``--json`` report (whatever its exit code)."""
    report: dict[str, object] = json.loads(subprocess.run(argv, capture_output=True, text=True, check=False).stdout)
    return report


def row(label: str, measured: dict[str, object]) -> tuple[str, int, int, float, int, int]:
    """``(label, library bytes, TreeEnsembleClassifier bytes, named share, models ok, models)``."""
    size: dict[str, object] = measured["size"]  # type: ignore[assignment]
    ops = {f"{o['domain']}:{o['op']}": o["bytes"] for o in size["ops"]}  # type: ignore[attr-defined]
    share = size["named_text_rodata"] / size["text_rodata"]  # type: ignore[operator]
    statuses: dict[str, str] = measured["models"]  # type: ignore[assignment]
    ok = sum(s == "ok" for s in statuses.values())
    return label, int(size["file_bytes"]), int(ops.get(TREE, 0)), share, ok, len(statuses)  # type: ignore[call-overload]


def svg(rows: list[tuple[str, int]], target: int, n_ours: int) -> str:
    """A horizontal bar chart (MB): our builds first, in blue; the target as a dashed line."""
    width, left, bar, gap = 640, 250, 22, 10
    scale = (width - left - 90) / max(size for _, size in rows)
    height = 40 + len(rows) * (bar + gap) + 20
    out = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
            'font-size="12">'
        ),
        '<text x="10" y="20" font-size="14" font-weight="bold">libonnxruntime.so, x86-64 Linux (MB)</text>',
    ]
    for i, (label, size) in enumerate(rows):
        y = 36 + i * (bar + gap)
        color = "#2a7ab9" if i < n_ours else "#9a9a9a"
        out.append(f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{label}</text>')
        out.append(f'<rect x="{left}" y="{y}" width="{max(1.0, size * scale):.1f}" height="{bar}" fill="{color}"/>')
        out.append(f'<text x="{left + size * scale + 6:.1f}" y="{y + 15}">{size / 1e6:.2f}</text>')
    x = left + target * scale
    out.append(f'<line x1="{x:.1f}" y1="30" x2="{x:.1f}" y2="{height - 24}" stroke="#c0392b" stroke-dasharray="4 3"/>')
    out.append(f'<text x="{x + 4:.1f}" y="{height - 8}" fill="#c0392b">target {target / 1e6:.1f} MB</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def report(builds: list[tuple[str, dict[str, object]]]) -> list[tuple[str, int]]:
    """Print the table and the targets; the (label, bytes) rows for the chart."""
    rows = [row(label, measured) for label, measured in builds]
    print(f"| build | libonnxruntime.so | {TREE.split(':')[1]} (size) | .text+.rodata named | models (verify) |")
    print("|---|---:|---:|---:|---|")
    for label, size, tree, share, ok, models in rows:
        print(f"| {label} | {size:,} B | {tree:,} B | {share:.1%} | {ok} of {models} ok |")
    before, after = rows[0], rows[1]
    library_delta, tree_delta = before[1] - after[1], before[2] - after[2]
    error = abs(tree_delta - library_delta) / library_delta if library_delta else float("inf")
    met = after[1] <= TARGET and after[4] == after[5] > 0
    print()
    print(f"- default build <= {TARGET:,} B, every model ok: {after[1]:,} B, {after[4]} of {after[5]} ok: "
          f"{'met' if met else 'NOT met'}")  # fmt: skip
    print(f"- named share >= 90 %: {after[3]:.1%}: {'met' if after[3] >= 0.9 else 'NOT met'}")
    print(f"- TreeEnsembleClassifier before - after = {tree_delta:,} B vs library {library_delta:,} B: "
          f"{error:.1%} apart: {'met' if error <= 0.1 else 'NOT met'}")  # fmt: skip
    return [(label, size) for label, size, *_ in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--ort-source", type=Path, help="ONNX Runtime source tree to build from")
    source.add_argument("--library", type=Path, help="measure this library instead of building one")
    parser.add_argument("--deps-dir", type=Path, help="ORT's dependency sources (offline build)")
    parser.add_argument("--build-dir", type=Path, help="the default builds' directory (reused when nothing changed)")
    parser.add_argument("--compiler-launcher", action="append", default=[], metavar="TOOL", help="e.g. ccache")
    parser.add_argument("--profile", action="append", default=[], metavar="DIR=ARGS", help="another build, in DIR")
    parser.add_argument("--svg", type=Path, help="write the size chart here")
    parser.add_argument("--parts-svg", type=Path, help="write the default build's operator/part chart here")
    args = parser.parse_args()

    if args.library:
        subprocess.run([*CLI, "size", "--runtime", str(args.library)], check=True)
        return
    work = Path(args.build_dir or tempfile.mkdtemp(prefix="ort-rb-size-"))
    work.mkdir(parents=True, exist_ok=True)
    config = work / "sample.config"
    subprocess.run([*CLI, "config", str(SAMPLE_MODELS), "-o", str(config)], check=True)
    builds = [("ORT's type reduction only", build(args, config, work, ["--no-extra-type-reduction"]))]
    builds.append(("defaults (+ extra type reduction)", build(args, config, work, [])))
    if args.parts_svg:
        subprocess.run([*CLI, "size", "--build-dir", str(work), "--svg", str(args.parts_svg)], check=True)
    for directory, _, extra in (p.partition("=") for p in args.profile):
        builds.append((f"defaults {extra}", build(args, config, Path(directory), shlex.split(extra))))
    rows = report(builds)
    if args.svg:
        args.svg.write_text(svg([*rows, *REFERENCES], TARGET, len(rows)), encoding="utf-8")
        print(f"wrote {args.svg}")


if __name__ == "__main__":
    main()
