"""The graph ``size`` weighs a library with: its pieces, what each costs, what refers to what, and who
owns each piece.

Pieces come from the symbol table, or the link map of a stripped library; gaps are cut at labels (code)
and at the addresses something refers to (data). A piece costs its bytes, its unwind entry
(``.eh_frame`` and its ``.eh_frame_hdr`` slot), its exception table and its relocations' entries.
References are the relocations' and the code's (``objdump``); the roots are the exported functions and
the static initializers.

Owners: an operator owns what nothing reaches once its kernel registrations are gone
(``BuildKernelCreateInfo<..._<Op>_<domain>_ver..>`` and its create function), and the members of its
kernel class the link left unreferenced; what only kernels reach, but no single operator, is shared
kernel code; the rest goes to a part by name, then to the part of whatever refers to it.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

from ..errors import SizeError
from ..util.elf import Elf, containing
from . import symbols as _symbols
from . import xrefs as _xrefs
from .linkmap import MapError, Piece, read_map

__all__ = ["OVERHEAD", "SHARED", "Graph", "OpKey", "owners", "weigh"]

SHARED = "kernels shared by several ops"
OVERHEAD = "ELF headers, dynamic symbols, PLT, padding"
"""The bytes no piece holds: the file's own structure."""
OpKey = tuple[str, str]
"""``(domain, op)``."""
_CONTENT = re.compile(r"^\.(text|rodata|data|tdata|init_array|fini_array|preinit_array|init|fini|got)\b")
_CODE = re.compile(r"^\.(text|init|fini)(\.|$)")
_PADDING = 64
"""The largest alignment padding before a function (64-byte aligned kernels)."""
_SECTION_PARTS = {".got": OVERHEAD, ".got.plt": OVERHEAD, ".init": "C runtime startup", ".fini": "C runtime startup"}
_SECTION_PARTS |= dict.fromkeys((".init_array", ".fini_array", ".preinit_array"), "static initializers")
_ROOTS = re.compile(r"^\.(init_array|fini_array|preinit_array|init|fini)\b")


@dataclass
class Graph:
    """Pieces ``0..n-1`` with their demangled names, costs, references (both ways) and the roots."""

    pieces: list[Piece]
    names: list[str]
    cost: list[int]
    edges: list[set[int]] = field(default_factory=list)
    referrers: list[set[int]] = field(default_factory=list)
    roots: set[int] = field(default_factory=set)
    names_from: str = ""
    """``symbol table``, ``link map <name>`` or ``none``."""

    def reach(self, blocked: frozenset[int] | set[int] = frozenset(), start: set[int] | None = None) -> set[int]:
        """The pieces reached from the roots (or ``start``) without passing through ``blocked``."""
        seen = set(self.roots if start is None else start) - blocked
        todo = list(seen)
        while todo:
            for j in self.edges[todo.pop()]:
                if j not in seen and j not in blocked:
                    seen.add(j)
                    todo.append(j)
        return seen


def weigh(elf: Elf, link_map: Path | None, notes: list[str]) -> Graph:
    """The weighed pieces of ``elf`` and the references between them (``notes`` gets what is missing)."""
    named, marks, names_from = _named(elf, link_map, notes)
    references = _references(elf, notes) if named else []  # nothing to tell apart without names
    pieces = _tile(elf, named, marks + [("", target) for _, target in references])
    found = _graph(elf, pieces, references)
    found.names_from = names_from
    return found


def _references(elf: Elf, notes: list[str]) -> list[tuple[int, int]]:
    """``(where, target)`` of every relocation and of every branch and address load in the code."""
    out = [(where, target) for where, _, target in elf.relocations()]
    tool = _xrefs.disassembler(elf.machine)
    if tool is None:
        notes.append(f"no objdump for {elf.machine}: code references unknown, operators weigh their own pieces only")
    else:
        out += _xrefs.references(tool, elf.path)
    return out


def _named(elf: Elf, link_map: Path | None, notes: list[str]) -> tuple[list[Piece], list[tuple[str, int]], str]:
    """The pieces the symbol table or the link map names, the labels without a size (assembly), and where
    the names come from."""
    symbols = elf.symbols()
    if symbols:
        sized = [Piece(s.name, s.section, s.address, s.size) for s in symbols if s.size and s.kind in (1, 2)]
        marks = [(s.name, s.address) for s in symbols if not s.size and s.kind in (0, 2) and not s.name.startswith(".")]
        return sized, marks, "symbol table"
    if link_map is None:
        notes.append("stripped and no link map: only sections can be told apart (build with ort-reduced-build)")
        return [], [], "none"
    try:
        outputs, pieces = read_map(link_map)
    except MapError as exc:
        raise SizeError(str(exc)) from None
    for s in elf.sections:
        if s.alloc and s.name in outputs and outputs[s.name] != (s.address, s.size):
            raise SizeError(f"{link_map}: the link map of another build of {elf.path.name} ({s.name} differs)")
    return pieces, [], f"link map {link_map.name}"


def _tile(elf: Elf, pieces: Iterable[Piece], marks: Iterable[tuple[str, int]]) -> list[Piece]:
    """Non-overlapping pieces covering every content section: aliases and overlaps dropped, the gaps cut
    at ``marks`` (labels, and addresses something refers to) and named after the label, if any. In code,
    a short unnamed gap before a function is its alignment padding: it goes with the function."""
    by_section: dict[str, list[Piece]] = defaultdict(list)
    for p in pieces:
        by_section[p.section].append(p)
    labels = dict(sorted(((a, n) for n, a in marks), key=lambda t: (t[0], t[1] == "", t[1]), reverse=True))
    cuts = sorted(labels)
    out: list[Piece] = []
    for s in elf.sections:
        if not (s.alloc and s.file_size and _CONTENT.match(s.name)):
            continue
        cursor, end = s.address, s.address + s.size
        for p in sorted(by_section[s.name], key=lambda p: (p.address, -p.size, p.name)):
            if p.address + p.size <= cursor or p.address >= end:
                continue
            gap = _gap(s.name, cursor, p.address, cuts, labels)
            if _padding(gap):
                start = cursor  # the function takes its alignment padding
            else:
                out += gap
                start = max(p.address, cursor)
            out.append(Piece(p.name, s.name, start, min(p.address + p.size, end) - start, p.origin))
            cursor = min(p.address + p.size, end)
        out += _gap(s.name, cursor, end, cuts, labels)
    return out


def _padding(gap: list[Piece]) -> bool:
    """A short unnamed run of code before a function: its alignment."""
    only = gap[0] if len(gap) == 1 else None
    return only is not None and only.name.startswith("<") and only.size <= _PADDING and bool(_CODE.match(only.section))


def _gap(section: str, start: int, end: int, cuts: list[int], labels: dict[int, str]) -> list[Piece]:
    """A gap's pieces: cut at labels; in data also where something refers (a string, a constant)."""
    if start >= end:
        return []
    inside = cuts[bisect_right(cuts, start) : bisect_left(cuts, end)]
    if section.startswith(".text"):  # code is cut at labels only: a jump target is inside its function
        inside = [a for a in inside if labels[a]]
    bounds = [start, *inside, end]
    return [Piece(labels.get(a) or f"<{section}>", section, a, b - a) for a, b in pairwise(bounds) if b > a]


def _graph(elf: Elf, pieces: list[Piece], references: list[tuple[int, int]]) -> Graph:
    """The pieces, their costs (with their unwind entries, exception tables and relocations), the
    references between them and the roots."""
    starts = [p.address for p in pieces]
    ends = [p.address + p.size for p in pieces]
    cost = [p.size for p in pieces]
    frames = elf.frames()
    lsda = _lsda_sizes(elf, [f.lsda for f in frames if f.lsda])
    hdr = 8 if elf.section(".eh_frame_hdr") is not None else 0
    for frame in frames:
        if (i := containing(starts, ends, frame.start)) is not None:
            cost[i] += frame.size + hdr + lsda.pop(frame.lsda, 0)
    for where, size, _ in elf.relocations():
        if (i := containing(starts, ends, where)) is not None:
            cost[i] += size
    graph = Graph(pieces, _symbols.demangle([p.name for p in pieces]), cost)
    graph.edges = [set() for _ in pieces]
    graph.referrers = [set() for _ in pieces]
    for where, target in references:
        i, j = containing(starts, ends, where), containing(starts, ends, target)
        if i is not None and j is not None and i != j:
            graph.edges[i].add(j)
            graph.referrers[j].add(i)
    exported = [s.address for s in elf.symbols(dynamic=True)]
    graph.roots = {i for a in exported if (i := containing(starts, ends, a)) is not None}
    graph.roots |= {i for i, p in enumerate(pieces) if _ROOTS.match(p.section)}
    return graph


def _lsda_sizes(elf: Elf, starts: list[int]) -> dict[int, int]:
    """Each exception table's bytes: up to the next one (the compiler writes one per function, in order)."""
    table = elf.section(".gcc_except_table")
    marks = sorted(set(starts)) + ([table.address + table.size] if table is not None else [])
    return {a: b - a for a, b in pairwise(marks)}


def _registrations(graph: Graph) -> dict[OpKey, dict[str, set[int]]]:
    """Per operator, per type ("" for an untyped kernel), the pieces of its kernel registrations
    (``BuildKernelCreateInfo<..._<Op>_<domain>_ver<N>_<type>>`` and its create function): what the
    registration table loses when the op, or that type of it, is left out."""
    found: dict[OpKey, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    for i, name in enumerate(graph.names):
        if (registered := _symbols.registration(name)) is not None:
            found[registered[0], registered[1]][registered[2]].add(i)
    return found


def _class_members(graph: Graph, ops: Iterable[OpKey]) -> dict[int, OpKey]:
    """The pieces that are members of a kernel class named after an op (``Conv<float>::Compute``, ``vtable
    for ml::TreeEnsembleClassifier<double>``); a class named like an op of two domains is told apart by
    ORT's namespaces (``ml::``, ``contrib::``)."""
    by_name: dict[str, list[OpKey]] = defaultdict(list)
    for key in ops:
        by_name[key[1]].append(key)
    if not by_name:
        return {}
    pattern = re.compile(rf"(?:^|::|[\s<,(])({'|'.join(map(re.escape, sorted(by_name)))})(?=<|::)")
    out = {}
    for i, name in enumerate(graph.names):
        keys = [k for op in {m[1] for m in pattern.finditer(name)} for k in _by_namespace(by_name[op], name)]
        if len(keys) == 1:
            out[i] = keys[0]
    return out


def _by_namespace(keys: list[OpKey], name: str) -> list[OpKey]:
    if len(keys) == 1:
        return keys
    namespace = "ai.onnx.ml" if "onnxruntime::ml::" in name else "com.microsoft" if "::contrib::" in name else None
    return [k for k in keys if k[0] == namespace] or (
        [k for k in keys if k[0] == "ai.onnx"] if namespace is None else []
    )


def owners(
    graph: Graph, elf: Elf, archives: Path | None, notes: list[str]
) -> tuple[list[str], dict[OpKey, dict[str, int]]]:
    """Each piece's owner (``op:domain:Op``, a part, "" for none) and, per op with several typed kernels,
    what dropping each type alone would save."""
    registered = _registrations(graph)
    live = graph.reach()
    every = set().union(*(s for per_type in registered.values() for s in per_type.values()))
    free = graph.reach(every)
    kernels = live - free
    # What the rest of the library refers to among the kernel-only pieces: registrations (the tables).
    entries = {j for i in free for j in graph.edges[i] if j in kernels}
    outside = set(range(len(graph.pieces))) - kernels

    def only_through(blocked: set[int]) -> set[int]:
        """The live pieces every path from the roots reaches through ``blocked`` (searched in the kernels)."""
        return kernels - graph.reach(blocked | outside, entries) | (blocked - live)

    owner = [""] * len(graph.pieces)
    typed: dict[OpKey, dict[str, int]] = {}
    for key in sorted(registered):
        mine = set().union(*registered[key].values())
        for i in only_through(mine):
            owner[i] = SHARED if owner[i] else f"op:{key[0]}:{key[1]}"
        kinds = [kind for kind in registered[key] if kind]
        if len(kinds) > 1:
            typed[key] = {k: sum(graph.cost[i] for i in only_through(registered[key][k]) & live) for k in kinds}
    for i in kernels:
        owner[i] = owner[i] or SHARED
    for i, key in _class_members(graph, registered).items():  # left by the link, reached by nothing
        if i not in live and not owner[i]:
            owner[i] = f"op:{key[0]}:{key[1]}"
    _name_parts(graph, owner, archives, elf.machine)
    _inherit(graph, owner)
    if len(live) < len(graph.pieces) // 2:
        notes.append(f"only {len(live)} of {len(graph.pieces)} pieces reached from the exports: figures are rough")
    return owner, typed


def _name_parts(graph: Graph, owner: list[str], archives: Path | None, machine: str) -> None:
    """Parts by name: namespaces, then the static library defining the name; what only the catch-all
    ``onnxruntime::`` names takes its referrers' part first."""
    nm = _xrefs.binutil(machine, "nm", gcc=True)
    index = _symbols.archive_parts(archives, nm) if archives is not None else {}
    fallback = {}
    for i, name in enumerate(graph.names):
        piece = graph.pieces[i]
        if owner[i]:
            continue
        part = _SECTION_PARTS.get(piece.section)
        part = part or (_symbols.part_by_name(name) if not name.startswith("<") else None)
        if part in (None, _symbols.CORE) and index:
            qualified = _symbols.scope(name)
            part = next((index[s] for s in _symbols.class_scopes(qualified) if s in index), part)
        if part is None and piece.origin:  # a static library's member, or an object of a known kind
            archive, member = piece.origin.partition("(")[::2]
            stem = Path(archive).stem.removeprefix("lib")
            part = _symbols.archive_part(stem) if member or _symbols.archive_part(stem) != stem else None
        if part == _symbols.CORE and index:  # a static function of ORT's: its callers' library first
            fallback[i] = part
        else:
            owner[i] = part or ""
    _inherit(graph, owner)
    for i, part in fallback.items():
        owner[i] = owner[i] or part


def _inherit(graph: Graph, owner: list[str]) -> None:
    """Unowned pieces take the part of everything that refers to them, when that is one part (an
    operator's own pieces make that part the shared kernels: what only it reaches is its already)."""
    changed = True
    while changed:
        changed = False
        for i, current in enumerate(owner):
            if current:
                continue
            theirs = {SHARED if owner[j].startswith("op:") else owner[j] for j in graph.referrers[i]} - {""}
            if len(theirs) == 1:
                owner[i] = theirs.pop()
                changed = True
