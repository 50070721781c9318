"""The linker's map (``-Wl,-Map=FILE``, GNU ld's or LLVM lld's): the named pieces of a stripped library.

``build.py`` strips the minimal library (``-s``), so ``build`` asks the linker for a map: it lists every
input section the link kept, with its address and size (GNU ld on Linux, lld in Android's NDK). With
``-ffunction-sections -fdata-sections`` (ORT's flags) each function and object has its own section, named
after its mangled symbol, which names the bytes even after link-time optimization. Sections without a
symbol in their name (assembly kernels, ``.rodata``) are split at the symbols the map lists in them,
else named after their object file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MapError", "Piece", "read_map"]

_START = "Linker script and memory map"
_LLD_HEADER = re.compile(r"^\s*VMA\s+LMA\s+Size\s+Align\s+Out\s+In\s+Symbol\s*$", re.MULTILINE)
_LLD_LINE = re.compile(r"^\s*([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+\d+ ( *)(\S.*)$")
_LLD_INPUT = re.compile(r"^(.*):\((\S+)\)$")
_OUTPUT = re.compile(r"^(\.[^\s]+)(?:\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+))?\s*$")
_INPUT = re.compile(r"^ (\.[^\s]+|COMMON)(?:\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)\s+(.*))?$")
_WRAPPED = re.compile(r"^\s{10,}0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)\s+(.*)$")
_SYMBOL = re.compile(r"^\s{10,}0x([0-9a-fA-F]+)\s{2,}(\S.*)$")
_PREFIXES = (
    *(f".text.{k}." for k in ("unlikely", "hot", "startup", "exit")),
    ".text.",
    ".rodata.",
    *(f".data.rel.{k}." for k in ("ro.local", "ro", "local")),
    ".data.rel.",
    ".data.",
    ".tdata.",
    ".tbss.",
    ".bss.",
    ".init_array.",
    ".fini_array.",
)
_SUFFIX = re.compile(r"\.(?:str\d+\.\d+|cst\d+)$")
_UNWIND = frozenset({".eh_frame", ".eh_frame_hdr", ".gcc_except_table"})
"""Attributed per function from the FDEs, not from the map."""


class MapError(ValueError):
    """Not a linker map we read, or one of another library."""


@dataclass(frozen=True)
class Piece:
    """A contiguous run of a library's bytes with one name: a function, an object, a chunk of data."""

    name: str
    """The (mangled) symbol, or a description in ``<...>`` when there is none."""
    section: str
    """The output section: ``.text``, ``.rodata``, ..."""
    address: int
    size: int
    origin: str = ""
    """The object file it came from, when the map names a real one (not an LTO partition)."""


def read_map(path: Path) -> tuple[dict[str, tuple[int, int]], list[Piece]]:
    """The output sections (``name -> (address, size)``) and the pieces of the allocated ones."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise MapError(f"{path}: cannot read: {exc.strerror}") from None
    if (header := _LLD_HEADER.search(text)) is not None:
        return _read_lld(text[header.end() :])
    start = text.find(_START)
    if start < 0:
        raise MapError(f"{path}: not a linker map (GNU ld's '{_START}' or lld's column header)")
    outputs: dict[str, tuple[int, int]] = {}
    pieces: list[Piece] = []
    current: _Input | None = None
    section = ""
    pending = ""  # an input section whose address and size are on the next line (a long name)
    for line in text[start:].splitlines()[1:]:
        name, fields = pending, _WRAPPED.match(line) if pending else None
        pending = ""
        if fields is None and (found := _OUTPUT.match(line)) and not line.startswith(" "):
            _flush(current, pieces)
            current, section = None, found[1]
            if found[2] is not None:
                outputs[section] = (int(found[2], 16), int(found[3], 16))
            continue
        if fields is None and (found := _INPUT.match(line)):
            _flush(current, pieces)
            current = None
            if found[2] is None:
                pending = found[1]
                continue
            name, fields = found[1], found
        if fields is not None:
            _flush(current, pieces)
            address, size, origin = fields.groups()[-3:]
            current = None
            if section not in _UNWIND and int(address, 16) and int(size, 16):
                current = _Input(name, section, int(address, 16), int(size, 16), origin.strip())
        elif current is not None and (found := _SYMBOL.match(line)) and _is_symbol(found[2]):
            current.symbols.append((int(found[1], 16), found[2].strip()))
    _flush(current, pieces)
    return outputs, pieces


def _read_lld(text: str) -> tuple[dict[str, tuple[int, int]], list[Piece]]:
    """lld's map: ``VMA LMA Size Align`` columns, then the output section, the input section
    (``file:(name)``, indented 8) or the symbol (indented 16)."""
    outputs: dict[str, tuple[int, int]] = {}
    pieces: list[Piece] = []
    current: _Input | None = None
    section = ""
    for line in text.splitlines():
        found = _LLD_LINE.match(line)
        if found is None:
            continue
        address, size, indent, rest = int(found[1], 16), int(found[2], 16), len(found[3]), found[4].strip()
        if indent == 0:
            _flush(current, pieces)
            current, section = None, rest
            outputs[section] = (address, size)
        elif indent <= 8 and (where := _LLD_INPUT.match(rest)) is not None:
            _flush(current, pieces)
            keep = section not in _UNWIND and address and size
            current = _Input(where[2], section, address, size, where[1]) if keep else None
        elif current is not None and _is_symbol(rest):
            current.symbols.append((address, rest))
    _flush(current, pieces)
    return outputs, pieces


def _is_symbol(text: str) -> bool:
    return not text.startswith(("*", "(", ".", "PROVIDE")) and " = " not in text


@dataclass
class _Input:
    name: str
    section: str
    address: int
    size: int
    origin: str
    symbols: list[tuple[int, str]]

    def __init__(self, name: str, section: str, address: int, size: int, origin: str) -> None:
        self.name, self.section, self.address, self.size, self.origin = name, section, address, size, origin
        self.symbols = []


def _flush(found: _Input | None, out: list[Piece]) -> None:
    """The pieces of one input section: itself when its name holds a symbol, else split at its symbols."""
    if found is None:
        return
    origin = "" if ".ltrans" in found.origin or found.origin.startswith("<") else found.origin
    symbol = _symbol_in(found.name)
    if symbol:
        out.append(Piece(symbol, found.section, found.address, found.size, origin))
        return
    end = found.address + found.size
    marks = sorted({(a, s) for a, s in found.symbols if found.address <= a < end})
    if not marks or marks[0][0] > found.address:
        first = marks[0][0] if marks else end
        label = f"<{found.name} of {Path(origin.split('(')[-1].rstrip(')')).name or 'the link'}>"
        out.append(Piece(label, found.section, found.address, first - found.address, origin))
    for i, (address, name) in enumerate(marks):
        stop = marks[i + 1][0] if i + 1 < len(marks) else end
        if stop > address:
            out.append(Piece(name, found.section, address, stop - address, origin))


def _symbol_in(section_name: str) -> str:
    """The symbol a ``-ffunction-sections``/``-fdata-sections`` input section is named after ("" if none)."""
    for prefix in _PREFIXES:
        if section_name.startswith(prefix):
            return _SUFFIX.sub("", section_name[len(prefix) :])
    return ""
