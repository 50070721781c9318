"""Size of the minimal ONNX Runtime built for the sample project's models, against the reference points.

    python benchmarks/bench_size.py --ort-source DIR [--deps-dir DIR] [--build-dir DIR] [--svg FILE]
    python benchmarks/bench_size.py --library PATH [--svg FILE]      (measure a library already built)

``--variant LABEL=PATH`` (repeatable) adds other builds of the same config to the table and the chart,
e.g. one with extra build.py flags (``ort-reduced-build build ... -- --enable_lto``).

Writes the sample's config with ``ort-reduced-build config``, builds the runtime with ``ort-reduced-build
build`` (the flags ``build.py`` picks for that config; a build directory with a build of the same config
is reused; the build runs the sample's models on the library and fails if they do not run), and prints
the library's size next to the issue's reference points: PyPI's full
libonnxruntime, a minimal build with every operator, and ORT's reduced build of a 4-op model. ``--svg``
draws them as a bar chart (docs/runtime-size.svg). Target: at most 2.0 MB on x86-64 Linux.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE_MODELS = REPO / "sample_project" / "src" / "sample_app" / "models"
TARGET = 2_000_000
REFERENCES = [  # measured on x86-64 Linux, recorded in the issue
    ("PyPI onnxruntime, full", 34_800_000),
    ("minimal build, all operators", 8_700_000),
    ("ORT's reduced build, a 4-op model", 2_600_000),
]


def build_library(args: argparse.Namespace) -> Path:
    """The sample's config, then the runtime built for it; the library's path."""
    work = Path(args.build_dir or tempfile.mkdtemp(prefix="ort-rb-size-"))
    work.mkdir(parents=True, exist_ok=True)
    config = work / "required_operators_and_types.config"
    cli = [sys.executable, "-m", "ort_reduced_build"]
    subprocess.run([*cli, "config", str(SAMPLE_MODELS), "-o", str(config)], check=True)
    command = [*cli, "build", "--ort-source", str(args.ort_source), "--config", str(config)]
    command += ["--build-dir", str(work / "ort")]
    if args.deps_dir:
        command += ["--deps-dir", str(args.deps_dir)]
    subprocess.run(command, check=True)
    described = subprocess.run([*command, "--describe"], check=True, capture_output=True, text=True).stdout
    return Path(json.loads(described)["library"])


def svg(rows: list[tuple[str, int]], target: int, n_ours: int) -> str:
    """A horizontal bar chart (MB): our ``1 + n_ours`` builds first, in blue; the target as a dashed line."""
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
        color = "#2a7ab9" if i <= n_ours else "#9a9a9a"
        out.append(f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{label}</text>')
        out.append(f'<rect x="{left}" y="{y}" width="{max(1.0, size * scale):.1f}" height="{bar}" fill="{color}"/>')
        out.append(f'<text x="{left + size * scale + 6:.1f}" y="{y + 15}">{size / 1e6:.2f}</text>')
    x = left + target * scale
    out.append(f'<line x1="{x:.1f}" y1="30" x2="{x:.1f}" y2="{height - 24}" stroke="#c0392b" stroke-dasharray="4 3"/>')
    out.append(f'<text x="{x + 4:.1f}" y="{height - 8}" fill="#c0392b">target {target / 1e6:.1f} MB</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--ort-source", type=Path, help="ONNX Runtime source tree to build from")
    source.add_argument("--library", type=Path, help="measure this library instead of building one")
    parser.add_argument("--deps-dir", type=Path, help="ORT's dependency sources (offline build)")
    parser.add_argument("--build-dir", type=Path, help="keep the build here (reused when the config is the same)")
    parser.add_argument("--variant", action="append", default=[], metavar="LABEL=PATH", help="another build to show")
    parser.add_argument("--svg", type=Path, help="write the bar chart here")
    args = parser.parse_args()

    library = args.library or build_library(args)
    size = library.stat().st_size
    variants = [(label, Path(path).stat().st_size) for label, _, path in (v.partition("=") for v in args.variant)]
    rows = [("ours: the sample's 2 models", size), *variants, *REFERENCES]
    print("| build | libonnxruntime.so bytes | vs ours |")
    print("|---|---:|---:|")
    for label, bytes_ in rows:
        print(f"| {label} | {bytes_:,} | {bytes_ / size:.1f}x |")
    verdict = "met" if size <= TARGET else "NOT met"
    print(f"\n{library}: {size:,} bytes; target <= {TARGET:,}: {verdict}")
    if args.svg:
        args.svg.write_text(svg(rows, TARGET, len(variants)), encoding="utf-8")
        print(f"wrote {args.svg}")


if __name__ == "__main__":
    main()
