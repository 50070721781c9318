"""Type reduction for the ops ORT's own leaves whole (``ai.onnx.ml``, most contrib ops).

ORT's ``reduce_op_kernels.py`` writes reduced copies of the kernel registration tables into
``BUILD/op_reduction.generated/``, commenting out the ``BuildKernelCreateInfo<...>`` entries a config does
not need. For an op without a type-usage processor it keeps every typed entry: TreeEnsembleClassifier's
float, double, int64_t and int32_t kernels where the models feed it floats. Here, between ORT's
generation and the compile (``build`` runs build.py ``--update``, this, then ``--build``), the typed
entries of such ops are commented out the same way when a type of theirs is on none of the op's nodes
(the config header's ``# graph types`` lines, from the models' graphs).

The rule is ORT's for globally allowed types (``GloballyAllowedTypesOpTypeImplFilter``: a registration is
kept when its type is allowed), applied per op: a typed registration is kept when every type in its
name (``float``, ``string_float``, ``int64_t_string``) is on the op's nodes. It never drops an entry it
cannot read, never one whose type names it does not know, nothing for an op with an ``unknown`` type,
and never all the typed entries of one kernel version (ORT would then find no kernel: one keyed on a
type the graph does not show, e.g. of an omitted optional input, keeps them all). The runtime's run of
the models at the end of ``build`` and ``verify`` prove each decision.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..size.symbols import DOMAINS
from ..util.fileio import atomic_write

__all__ = ["GENERATED_DIR", "Registration", "filter_build", "filter_text", "registrations"]

GENERATED_DIR = "op_reduction.generated"
"""Where ORT's ``reduce_op_kernels.py`` writes the reduced registration files (in the config's build dir)."""
_MACRO = re.compile(r"BuildKernelCreateInfo<\s*(ONNX_OPERATOR(_VERSIONED)?(_TWO)?(_TYPED)?_KERNEL_CLASS_NAME)\s*\(")
_END_MARKS = (");", ")>", ")>,", ")>,};", ")>};")
"""How ORT's ``op_registration_utils`` tells the last line of an entry."""
_KNOWN = frozenset(
    {"float", "double", "bool", "string", "float16", "bfloat16"}
    | {f"{sign}int{bits}" for sign in ("", "u") for bits in (8, 16, 32, 64)}
    | {"float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz"}
)


@dataclass(frozen=True)
class Registration:
    """One uncommented ``BuildKernelCreateInfo<...>`` entry of a registration table."""

    first: int
    """Index of its first line."""
    last: int
    domain: str
    op: str
    since: int
    end: int | None
    types: tuple[str, ...]
    """The types its class name carries (``string_float`` -> ``string``, ``float``); empty when untyped."""

    def describe(self) -> str:
        versions = f"{self.since}-{self.end}" if self.end is not None else str(self.since)
        return f"{self.domain}:{self.op}({versions})<{','.join(self.types)}>"


def registrations(lines: list[str]) -> list[Registration]:
    """The entries of a registration file, read as ORT reads them
    (``op_registration_utils.process_kernel_registration_file``)."""
    out = []
    i = 0
    while i < len(lines):
        if not lines[i].strip().startswith("BuildKernelCreateInfo<ONNX"):
            i += 1
            continue
        last = i
        while not lines[last].strip().endswith(_END_MARKS) and last + 1 < len(lines):
            last += 1
        found = _parse("".join(line.strip() for line in lines[i : last + 1]), i, last)
        if found is not None:
            out.append(found)
        i = last + 1
    return out


def _parse(code: str, first: int, last: int) -> Registration | None:
    found = _MACRO.search(code)
    close = code.find(")", found.end()) if found else -1
    if found is None or close < 0:
        return None
    args = [a.strip() for a in code[found.end() : close].split(",")]
    versioned, two, typed = bool(found[2]), bool(found[3]), bool(found[4])
    count = 4 + versioned + typed + two
    if len(args) != count or not all(args):
        return None
    op, rest = args[-1], args[2:-1]
    since, rest = rest[0], rest[1:]
    end, rest = (rest[0], rest[1:]) if versioned else (None, rest)
    if not since.isdigit() or (end is not None and not end.isdigit()):
        return None
    types = tuple(t for part in rest for t in _split_types(part))
    return Registration(first, last, DOMAINS.get(args[1], args[1]), op, int(since), int(end) if end else None, types)


def _split_types(text: str) -> list[str]:
    """``int64_t_string`` -> ``int64_t``, ``string`` (ORT's ``_split_reg_types``)."""
    out: list[str] = []
    for token in text.split("_"):
        if token == "t" and out:  # noqa: S105 -- a name's "_t" suffix, not a password
            out[-1] += "_t"
        else:
            out.append(token)
    return out


def _canonical(name: str) -> str:
    """One spelling for the config's and the registrations' type names: ``int64_t``/``int64`` ->
    ``int64``, ``std::string`` -> ``string``, ``MLFloat16`` -> ``float16``."""
    name = name.strip().removeprefix("std::").lower().removesuffix("_t")
    return {"mlfloat16": "float16"}.get(name, name)


def decide(found: list[Registration], graph_types: Mapping[tuple[str, str], frozenset[str]]) -> set[int]:
    """The indices (into ``found``) of the entries to comment out."""
    drop: set[int] = set()
    groups: dict[tuple[str, str, int, int | None], list[int]] = defaultdict(list)
    for i, r in enumerate(found):
        if r.types:
            groups[r.domain, r.op, r.since, r.end].append(i)
    for (domain, op, _, _), members in groups.items():
        seen = {_canonical(t) for t in graph_types.get((domain, op), ())}
        if not seen or not seen <= _KNOWN:  # no record, "unknown", or a type we cannot spell: keep all
            continue
        unused = [i for i in members if _unused(found[i].types, seen)]
        if len(unused) < len(members):
            drop.update(unused)
    return drop


def _unused(types: tuple[str, ...], seen: set[str]) -> bool:
    names = {_canonical(t) for t in types}
    return names <= _KNOWN and not names <= seen


def filter_text(text: str, graph_types: Mapping[tuple[str, str], frozenset[str]]) -> tuple[str, list[str]]:
    """A registration file's text with the unused typed entries commented out as ORT does, and what went."""
    lines = text.splitlines(keepends=True)
    found = registrations(lines)
    dropped = sorted(decide(found, graph_types))
    for i in reversed(dropped):
        r = found[i]
        block = ["// " + line for line in lines[r.first : r.last + 1]]
        if lines[r.last].rstrip().endswith("};"):  # the table's last entry: its end stays
            block.append("};\n")
        lines[r.first : r.last + 1] = block
    return "".join(lines), [found[i].describe() for i in dropped]


def filter_build(config_dir: Path, graph_types: Mapping[tuple[str, str], frozenset[str]]) -> list[str]:
    """Filter every registration file ORT generated in ``config_dir``; what went, sorted."""
    dropped: list[str] = []
    for path in sorted((config_dir / GENERATED_DIR).rglob("*.cc")):
        text = path.read_text(encoding="utf-8")
        new, gone = filter_text(text, graph_types)
        if gone:
            atomic_write(path, new.encode("utf-8"))
            dropped += gone
    return sorted(dropped)
