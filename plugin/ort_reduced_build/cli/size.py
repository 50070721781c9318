"""The ``size`` verb: where a built library's bytes go, per operator, part and section (``size.measure``).

A shell: it finds the library (and the link map ``build`` keeps beside it), measures it and a baseline,
and prints tables, JSON or an SVG chart.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import SettingsError, SizeError
from ..util.fileio import atomic_write
from .common import EXIT_OK, positive_int

if TYPE_CHECKING:
    from ..size import SizeReport

__all__ = ["add_size_parser", "measure_build_dir"]


def add_size_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "size",
        help="attribute a built library's bytes to operators, runtime parts and sections",
        description="Where the bytes of a built ONNX Runtime library go: per operator (what dropping it would "
        "save, per registered type), per part of the runtime (session, graph, MLAS, abseil, ...) and per "
        "section. Reads the symbol table, or the link map `build` keeps beside the stripped library; follows "
        "the code's references with objdump.",
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--build-dir", type=Path, metavar="DIR", help="a directory `build` (or CMake) built")
    where.add_argument(
        "--runtime", type=Path, metavar="LIB", help="an ELF shared library (unstripped, or with LIB.map)"
    )
    p.add_argument(
        "--map", type=Path, metavar="FILE", help="the link map (GNU ld, lld) of a stripped LIB (default: LIB.map)"
    )
    p.add_argument(
        "--baseline", type=Path, metavar="LIB|DIR|JSON", help="another library, build dir or saved report: deltas"
    )
    p.add_argument("--top", type=positive_int, default=25, metavar="N", help="parts shown (default: 25; JSON: all)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--svg", type=Path, metavar="FILE", help="also write a bar chart of the operators and parts")
    p.set_defaults(func=cmd_size)


def cmd_size(args: argparse.Namespace) -> int:
    inputs = [p for p in (args.build_dir, args.runtime, args.map, args.baseline) if p is not None]
    if args.svg and any(args.svg.resolve() == p.resolve() for p in inputs):
        raise SettingsError(f"{args.svg}: --svg would overwrite an input")
    report = _measure(args.build_dir, args.runtime, args.map)
    baseline = _baseline(args.baseline) if args.baseline else None
    if args.json:
        obj = report.to_json()
        if baseline is not None:
            obj["baseline"] = baseline.to_json()
        print(json.dumps(obj, indent=2))
    else:
        print("\n".join(lines(report, baseline, args.top)))
    if args.svg:
        atomic_write(args.svg, svg(report).encode())
    return EXIT_OK


def measure_build_dir(build_dir: Path) -> SizeReport:
    """The size report of the library ``build`` made in ``build_dir`` (its link map, its static libraries)."""
    from ..build import read_stamp
    from ..size import link_map_for, measure

    stamp = read_stamp(build_dir)
    library = Path(str(stamp.get("library", "")))
    if not stamp or not library.is_file():
        raise SizeError(f"{build_dir}: no library built here by ort-reduced-build (run `ort-reduced-build build`)")
    return measure(library, link_map_for(library), library.parent)


def _measure(build_dir: Path | None, runtime: Path | None, link_map: Path | None) -> SizeReport:
    from ..size import link_map_for, measure

    if build_dir is not None:
        return measure_build_dir(build_dir)
    assert runtime is not None
    if not runtime.is_file():
        raise SettingsError(f"{runtime}: no such library (--runtime)")
    if link_map is not None and not link_map.is_file():
        raise SettingsError(f"{link_map}: no such link map (--map)")
    archives = runtime.parent if any(runtime.parent.glob("libonnxruntime_*.a")) else None
    return measure(runtime, link_map or link_map_for(runtime), archives)


def _baseline(path: Path) -> SizeReport:
    from ..size import read_report

    if path.is_dir():
        return _measure(path, None, None)
    if path.suffix == ".json":
        return read_report(path)
    return _measure(None, path, None)


def lines(report: SizeReport, baseline: SizeReport | None = None, top: int = 25) -> list[str]:
    """The report as text tables (with a baseline: its figures and the deltas)."""
    out = [f"{report.library} ({report.machine}): {report.file_bytes:,} bytes; names from {report.names_from}"]
    out += [f"note: {note}" for note in report.notes]
    then_ops = baseline.op_bytes() if baseline else {}
    then_parts = dict(baseline.parts) if baseline else {}
    then_sections = {n: b for n, _, b in baseline.sections} if baseline else {}
    keys = [f"{o.domain}:{o.op}" for o in report.ops] + sorted(set(then_ops) - set(report.op_bytes()))
    if keys:
        out += ["", _row("operator (what dropping it saves)", None, None, baseline is not None)]
    now_ops = report.op_bytes()
    types = {f"{o.domain}:{o.op}": o.types for o in report.ops}
    for key in keys:
        out.append(_row(key, now_ops.get(key, 0), then_ops.get(key), baseline is not None))
        if types.get(key):
            out.append("    by type: " + ", ".join(f"{t} {b:,}" for t, b in types[key]))
    out += ["", _row("part", None, None, baseline is not None)]
    shown = [name for name, _ in report.parts][:top]
    shown += [name for name in then_parts if name not in dict(report.parts) and name not in shown]
    for name in shown:
        out.append(_row(name, dict(report.parts).get(name, 0), then_parts.get(name), baseline is not None))
    if len(report.parts) > top:
        rest = sum(b for _, b in report.parts[top:])
        out.append(_row(f"({len(report.parts) - top} more parts)", rest, None, baseline is not None))
    out += ["", _row("section", None, None, baseline is not None)]
    for name, group, size in report.sections:
        out.append(_row(f"{name} ({group})", size, then_sections.get(name), baseline is not None))
    share = report.named_text_rodata / report.text_rodata if report.text_rodata else 0.0
    out += [
        "",
        (
            f".text+.rodata given to operators or named parts: {report.named_text_rodata:,} of "
            f"{report.text_rodata:,} bytes ({share:.1%})"
        ),
    ]
    if baseline is not None:
        delta = report.file_bytes - baseline.file_bytes
        out.append(f"file: {delta:+,} bytes against {baseline.library} ({baseline.file_bytes:,})")
    return out


def _row(label: str, now: int | None, then: int | None, compare: bool) -> str:
    if now is None:
        return f"{label:<60} {'bytes':>11}" + (f" {'baseline':>11} {'delta':>10}" if compare else "")
    text = f"  {label[:58]:<58} {now:>11,}"
    if compare:
        text += f" {then:>11,} {now - then:>+10,}" if then is not None else f" {'-':>11} {now:>+10,}"
    return text


def svg(report: SizeReport, top: int = 14) -> str:
    """A horizontal bar chart: the operators (blue), then the largest parts (grey), in KB."""
    rows = [(f"{o.op} ({o.domain})", o.bytes, "#2a7ab9") for o in report.ops]
    rows += [(name, size, "#9a9a9a") for name, size in report.parts[:top]]
    width, left, bar, gap = 720, 300, 16, 6
    scale = (width - left - 80) / max([size for _, size, _ in rows] + [1])
    height = 40 + len(rows) * (bar + gap)
    name = Path(report.library).name
    out = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
            'font-size="11">'
        ),
        (
            f'<text x="10" y="18" font-size="13" font-weight="bold">{name}: {report.file_bytes / 1e6:.2f} MB '
            f"({report.machine}), KB per operator and part</text>"
        ),
    ]
    for i, (label, size, color) in enumerate(rows):
        y = 30 + i * (bar + gap)
        text = label.replace("&", "&amp;").replace("<", "&lt;")
        out.append(f'<text x="{left - 6}" y="{y + 12}" text-anchor="end">{text}</text>')
        out.append(f'<rect x="{left}" y="{y}" width="{max(1.0, size * scale):.1f}" height="{bar}" fill="{color}"/>')
        out.append(f'<text x="{left + size * scale + 4:.1f}" y="{y + 12}">{size / 1e3:.1f}</text>')
    return "\n".join([*out, "</svg>"]) + "\n"
