"""Where a library's bytes go: per operator kernel (and per type), per runtime part, per section.

``measure`` cuts the library into pieces (functions, objects, runs of data) named by its symbol table or
by the link map ``build`` keeps beside the stripped library ORT's build makes, weighs each with what
exists because of it (unwind entry, exception table, relocations), and follows the references between
them (see ``graph``). An operator weighs what dropping it would save: every piece nothing reaches
once its kernel registrations are gone. The rest goes to parts of the runtime (namespace, or
the ORT static library defining the name), and what nothing names is reported as unattributed.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SizeError
from ..util.elf import Elf, ElfError
from .graph import OVERHEAD, owners, weigh

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

UNATTRIBUTED = "unattributed"
SIZES_FILE = "ort-reduced-build-size.json"
"""The size report ``build`` leaves in its build directory (``explain --build-dir`` reads it)."""
_GROUPS = (
    (re.compile(r"^\.(text|init|fini|plt)(\.|$)"), "code"),
    (re.compile(r"^\.rodata"), "read-only data"),
    (re.compile(r"^\.(eh_frame|gcc_except_table|ARM\.ex)"), "unwind tables"),
    (re.compile(r"^\.rel"), "relocations"),
    (re.compile(r"^\.(dyn|gnu\.|got|hash|interp|note)"), "dynamic linking"),
    (re.compile(r"^\.(data|tdata|init_array|fini_array|preinit_array|bss|tbss)"), "data"),
)


@dataclass(frozen=True)
class OpSize:
    """What dropping one operator would save (``types``: the same per registered type, when it has several)."""

    domain: str
    op: str
    bytes: int
    types: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class SizeReport:
    """A library's bytes by operator, part and section."""

    library: str
    file_bytes: int
    machine: str
    names_from: str
    """``symbol table``, ``link map <file>``, or ``none`` (stripped, no map: sections only)."""
    sections: tuple[tuple[str, str, int], ...]
    """``(section, group, bytes in the file)`` of the loaded sections, by address."""
    ops: tuple[OpSize, ...]
    """Largest first."""
    parts: tuple[tuple[str, int], ...]
    """``(part, bytes)``, largest first, ``unattributed`` among them; with ``ops`` they add up to the file."""
    text_rodata: int
    """Bytes of ``.text`` and ``.rodata``."""
    named_text_rodata: int
    """Of those, the bytes given to an operator or a named part."""
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "library": self.library,
            "file_bytes": self.file_bytes,
            "machine": self.machine,
            "names_from": self.names_from,
            "sections": [{"name": n, "group": g, "bytes": b} for n, g, b in self.sections],
            "ops": [{"domain": o.domain, "op": o.op, "bytes": o.bytes, "types": dict(o.types)} for o in self.ops],
            "parts": dict(self.parts),
            "text_rodata": self.text_rodata,
            "named_text_rodata": self.named_text_rodata,
            "notes": list(self.notes),
        }

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> SizeReport:
        """A report ``to_json`` wrote; ``KeyError``, ``TypeError`` or ``ValueError`` when it is not one."""
        ops: list[dict[str, Any]] = obj["ops"]  # type: ignore[assignment]
        sections: list[dict[str, object]] = obj["sections"]  # type: ignore[assignment]
        parts: dict[str, object] = obj["parts"]  # type: ignore[assignment]
        return cls(
            library=str(obj["library"]),
            file_bytes=_int(obj["file_bytes"]),
            machine=str(obj["machine"]),
            names_from=str(obj["names_from"]),
            sections=tuple((str(s["name"]), str(s["group"]), _int(s["bytes"])) for s in sections),
            ops=tuple(
                OpSize(
                    str(o["domain"]),
                    str(o["op"]),
                    _int(o["bytes"]),
                    tuple((str(t), _int(b)) for t, b in o["types"].items()),
                )
                for o in ops
            ),
            parts=tuple((str(k), _int(v)) for k, v in parts.items()),
            text_rodata=_int(obj["text_rodata"]),
            named_text_rodata=_int(obj["named_text_rodata"]),
            notes=tuple(map(str, obj.get("notes", []))),  # type: ignore[call-overload]
        )

    def op_bytes(self) -> dict[str, int]:
        """``domain:op -> bytes``."""
        return {f"{o.domain}:{o.op}": o.bytes for o in self.ops}


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def read_report(path: Path) -> SizeReport:
    """A report saved as JSON (``size --json``, or the one ``build`` leaves); ``SizeError`` naming the file."""
    try:
        return SizeReport.from_json(json.loads(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise SizeError(f"{path}: cannot read: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SizeError(f"{path}: not a size report ({type(exc).__name__}: {exc})") from None


def link_map_for(library: Path) -> Path | None:
    """The link map beside a library (``LIB.map``, or ``libX.so.map`` for ``libX.so.1.2.3``), if any."""
    name = library.name
    for candidate in (library.with_name(name + ".map"), library.with_name(name.split(".so")[0] + ".so.map")):
        if candidate.is_file():
            return candidate
    return None


def measure(library: Path, link_map: Path | None = None, archives: Path | None = None) -> SizeReport:
    """The size report of ``library`` (an ELF shared library): ``link_map`` names a stripped one's pieces;
    ``archives`` is a directory of the static libraries it was linked from (names the runtime's parts)."""
    try:
        elf = Elf(library)
    except ElfError as exc:
        raise SizeError(str(exc)) from None
    notes: list[str] = []
    graph = weigh(elf, link_map, notes)
    owner, typed = owners(graph, elf, archives, notes)
    totals: dict[str, int] = defaultdict(int)
    named = 0
    for i, piece in enumerate(graph.pieces):
        label = owner[i] or UNATTRIBUTED
        totals[label] += graph.cost[i]
        if label != UNATTRIBUTED and piece.section in (".text", ".rodata"):
            named += piece.size
    keys = {tuple(k.split(":", 2)[1:]) for k in totals if k.startswith("op:")} | set(typed)
    ops = [
        OpSize(d, o, totals.pop(f"op:{d}:{o}", 0), tuple(sorted(typed.get((d, o), {}).items(), key=_largest)))
        for d, o in keys
    ]
    if (rest := len(elf.data) - sum(graph.cost)) > 0:
        totals[OVERHEAD] += rest
    return SizeReport(
        library=library.as_posix(),
        file_bytes=len(elf.data),
        machine=elf.machine,
        names_from=graph.names_from,
        sections=tuple((s.name, _group(s.name), s.file_size) for s in elf.sections if s.name and s.alloc),
        ops=tuple(sorted(ops, key=lambda o: (-o.bytes, o.domain, o.op))),
        parts=tuple(sorted(totals.items(), key=_largest)),
        text_rodata=sum(s.size for s in elf.sections if s.name in (".text", ".rodata")),
        named_text_rodata=named,
        notes=tuple(notes),
    )


def _largest(item: tuple[str, int]) -> tuple[int, str]:
    return -item[1], item[0]


def _group(section: str) -> str:
    return next((group for pattern, group in _GROUPS if pattern.match(section)), "other")


def save_build_sizes(build_dir: Path, report: SizeReport, key: str, ort_version: str) -> None:
    """Leave ``report`` in ``build_dir`` for ``explain --build-dir``, with what it was measured on."""
    from ..util.fileio import atomic_write

    record = {"key": key, "ort_version": ort_version, "toolchain": toolchain(Path(report.library).parent)}
    atomic_write(build_dir / SIZES_FILE, json.dumps({**record, "report": report.to_json()}, indent=1).encode())


def load_build_sizes(build_dir: Path) -> tuple[SizeReport, str, str]:
    """The report the last build in ``build_dir`` left, a line saying what it measured, and the build's
    stamp key."""
    path = build_dir / SIZES_FILE
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
        report = SizeReport.from_json(obj["report"])
    except OSError:
        raise SizeError(f"{build_dir}: no sizes recorded here (run `ort-reduced-build build` first)") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SizeError(f"{path}: not a size record ({type(exc).__name__}: {exc})") from None
    what = f"ONNX Runtime {obj.get('ort_version') or '?'}, {obj.get('toolchain') or '?'}, {report.machine}"
    return report, f"{report.library}: {report.file_bytes:,} bytes ({what})", str(obj.get("key", ""))


def toolchain(config_dir: Path) -> str:
    """``GNU 12.2.0`` from a CMake build directory's compiler record ("" when there is none)."""
    for found in sorted(config_dir.glob("CMakeFiles/*/CMakeCXXCompiler.cmake")):
        text = found.read_text(encoding="utf-8", errors="replace")
        fields = dict(re.findall(r'^set\(CMAKE_CXX_COMPILER_(ID|VERSION) "([^"]*)"\)$', text, re.MULTILINE))
        if fields:
            return f"{fields.get('ID', '?')} {fields.get('VERSION', '')}".strip()
    return ""
