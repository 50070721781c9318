"""ELF files read in Python: the machine, the sections, the symbols, the relocations and the unwind tables.

Enough of the format for ``size`` to weigh a library (32/64-bit, either byte order); no binutils needed.
"""

from __future__ import annotations

import struct
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Elf", "ElfError", "Frame", "Section", "Symbol", "machine"]

_MACHINES = {3: "x86", 8: "mips", 20: "ppc", 21: "ppc64", 22: "s390x", 40: "arm", 62: "x86_64", 183: "aarch64"}
_MACHINES |= {243: "riscv"}
_SHT_SYMTAB, _SHT_DYNSYM, _SHT_NOBITS, _SHT_RELA, _SHT_REL, _SHT_RELR = 2, 11, 8, 4, 9, 19
_SHF_ALLOC = 2
_SHN_LORESERVE = 0xFF00


def machine(path: Path) -> str | None:
    """``x86_64``, ``aarch64``, ``arm``, ... for an ELF file; None for anything else (Mach-O, PE, unreadable)."""
    try:
        with path.open("rb") as f:
            head = f.read(20)
    except OSError:
        return None
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    code = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
    return _MACHINES.get(code, f"ELF machine {code}")


class ElfError(ValueError):
    """The file is not an ELF file, or a table in it is malformed."""


@dataclass(frozen=True)
class Section:
    name: str
    kind: int
    """``sh_type``: 1 PROGBITS, 8 NOBITS (no bytes in the file), 4 RELA, ..."""
    flags: int
    address: int
    offset: int
    size: int
    link: int = 0
    """``sh_link``: for a symbol table, the index of its string table."""

    @property
    def alloc(self) -> bool:
        """Loaded at run time (the rest is symbol tables, notes for tools, comments)."""
        return bool(self.flags & _SHF_ALLOC)

    @property
    def file_size(self) -> int:
        return 0 if self.kind == _SHT_NOBITS else self.size


@dataclass(frozen=True)
class Symbol:
    name: str
    """As stored (mangled)."""
    address: int
    size: int
    kind: int
    """``STT_*``: 0 NOTYPE, 1 OBJECT, 2 FUNC."""
    section: str


@dataclass(frozen=True)
class Frame:
    """One FDE of ``.eh_frame``: the code range it describes, its own bytes and its LSDA's address (0: none)."""

    start: int
    length: int
    size: int
    lsda: int


class Elf:
    """An ELF file read into memory."""

    def __init__(self, path: Path) -> None:
        try:
            self.data = path.read_bytes()
        except OSError as exc:
            raise ElfError(f"{path}: cannot read: {exc.strerror}") from None
        if self.data[:4] != b"\x7fELF" or len(self.data) < 64:
            raise ElfError(f"{path}: not an ELF file")
        self.path = path
        self.wide = self.data[4] == 2
        self.order = "<" if self.data[5] == 1 else ">"
        self.machine = _MACHINES.get(self._unpack("H", 18)[0], "unknown")
        self.sections = self._read_sections()

    def _unpack(self, fmt: str, offset: int) -> tuple[int, ...]:
        try:
            return struct.unpack_from(self.order + fmt, self.data, offset)
        except struct.error:
            raise ElfError(f"{self.path}: truncated ELF file") from None

    def _read_sections(self) -> tuple[Section, ...]:
        if self.wide:
            shoff, shentsize, shnum, shstrndx = (*self._unpack("Q", 0x28), *self._unpack("HHH", 0x3A))
            layout = "IIQQQQIIQQ"
        else:
            shoff, shentsize, shnum, shstrndx = (*self._unpack("I", 0x20), *self._unpack("HHH", 0x2E))
            layout = "IIIIIIIIII"
        raw = [self._unpack(layout, shoff + i * shentsize) for i in range(shnum)]
        if not raw or shstrndx >= len(raw):
            return ()
        names = raw[shstrndx][4]
        # name, type, flags, address, offset, size, link
        return tuple(Section(self._string(names, r[0]), r[1], r[2], r[3], r[4], r[5], r[6]) for r in raw)

    def _string(self, base: int, offset: int) -> str:
        end = self.data.find(b"\0", base + offset)
        return self.data[base + offset : end].decode("utf-8", "replace")

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    def bytes_at(self, address: int, size: int) -> bytes:
        """The file's bytes at a run-time address (empty where no section holds them)."""
        for s in self.sections:
            if s.alloc and s.kind != _SHT_NOBITS and s.address <= address < s.address + s.size:
                start = s.offset + address - s.address
                return self.data[start : start + min(size, s.address + s.size - address)]
        return b""

    def symbols(self, dynamic: bool = False) -> list[Symbol]:
        """Defined symbols of ``.symtab`` (``.dynsym`` when ``dynamic``); empty for a stripped file."""
        kind = _SHT_DYNSYM if dynamic else _SHT_SYMTAB
        table = next((s for s in self.sections if s.kind == kind), None)
        if table is None:
            return []
        strings = self.sections[table.link].offset
        layout, step = ("IBBHQQ", 24) if self.wide else ("IIIBBH", 16)
        out = []
        for offset in range(table.offset + step, table.offset + table.size, step):
            fields = self._unpack(layout, offset)
            if self.wide:
                name, info, _, shndx, value, size = fields
            else:
                name, value, size, info, _, shndx = fields
            if 0 < shndx < min(_SHN_LORESERVE, len(self.sections)) and name:
                section = self.sections[shndx].name
                out.append(Symbol(self._string(strings, name), value, size, info & 0xF, section))
        return out

    def relocations(self) -> list[tuple[int, int, int]]:
        """``(where, bytes of its entry, target address or 0)`` for each dynamic relocation; RELR entries
        (one word encodes many) weigh one word each for the first address they name, nothing for the rest."""
        word = 8 if self.wide else 4
        out: list[tuple[int, int, int]] = []
        for s in self.sections:
            if not s.alloc or s.kind not in (_SHT_RELA, _SHT_REL, _SHT_RELR):
                continue
            if s.kind == _SHT_RELR:
                out += self._relr(s, word)
                continue
            step = word * (3 if s.kind == _SHT_RELA else 2)
            for offset in range(s.offset, s.offset + s.size - step + 1, step):
                where, _ = self._unpack("QQ" if self.wide else "II", offset)
                if s.kind == _SHT_RELA:
                    target = self._unpack("q" if self.wide else "i", offset + 2 * word)[0]
                else:
                    target = self._word_at(where)
                out.append((where, step, target))
        return out

    def _relr(self, s: Section, word: int) -> list[tuple[int, int, int]]:
        out = []
        base = 0
        for offset in range(s.offset, s.offset + s.size, word):
            entry = self._unpack("Q" if word == 8 else "I", offset)[0]
            if entry & 1 == 0:
                out.append((entry, word, self._word_at(entry)))
                base = entry + word
                continue
            out.extend(
                (base + bit * word, 0, self._word_at(base + bit * word))
                for bit in range(word * 8 - 1)
                if entry >> (bit + 1) & 1
            )
            base += (word * 8 - 1) * word
        return out

    def _word_at(self, address: int) -> int:
        raw = self.bytes_at(address, 8 if self.wide else 4)
        return int.from_bytes(raw, "little" if self.order == "<" else "big") if raw else 0

    def frames(self) -> list[Frame]:
        """The FDEs of ``.eh_frame`` (empty without one)."""
        section = self.section(".eh_frame")
        if section is None or section.kind == _SHT_NOBITS:
            return []
        return _EhFrame(self, section).frames()


class _EhFrame:
    """A walk over ``.eh_frame``'s CIEs and FDEs (the LSB/DWARF format GCC and Clang write)."""

    def __init__(self, elf: Elf, section: Section) -> None:
        self.elf, self.section = elf, section
        self.data = elf.data[section.offset : section.offset + section.size]
        self.cies: dict[int, tuple[int, int]] = {}  # offset -> (FDE pointer encoding, LSDA encoding)

    def frames(self) -> list[Frame]:
        out = []
        pos = 0
        while pos + 4 <= len(self.data):
            length = int.from_bytes(self.data[pos : pos + 4], "little" if self.elf.order == "<" else "big")
            if length == 0:
                break
            header = 4
            if length == 0xFFFFFFFF:
                length = self._uint(pos + 4, 8)
                header = 12
            body = pos + header
            pointer = self._uint(body, 4)
            if pointer == 0:
                self.cies[pos] = self._cie(body + 4)
            elif (cie := self.cies.get(body - pointer)) is not None:
                start, after = self._pointer(body + 4, cie[0])
                span, after = self._pointer(after, cie[0] & 0x0F)
                lsda = 0
                if cie[1] != 0xFF:
                    _, after = self._uleb(after)
                    lsda, _ = self._pointer(after, cie[1])
                out.append(Frame(start, span, header + length, lsda))
            pos = body + length
        return out

    def _cie(self, pos: int) -> tuple[int, int]:
        version = self.data[pos]
        end = self.data.index(b"\0", pos + 1)
        augmentation = self.data[pos + 1 : end].decode("ascii", "replace")
        pos = end + 1
        if "eh" in augmentation:
            pos += 8 if self.elf.wide else 4
        _, pos = self._uleb(pos)  # code alignment
        _, pos = self._uleb(pos)  # data alignment (a SLEB128: the same bytes)
        pos = pos + 1 if version == 1 else self._uleb(pos)[1]
        fde_encoding, lsda_encoding = 0, 0xFF
        if not augmentation.startswith("z"):
            return fde_encoding, lsda_encoding
        _, pos = self._uleb(pos)
        for letter in augmentation[1:]:
            if letter == "L":
                lsda_encoding, pos = self.data[pos], pos + 1
            elif letter == "P":
                _, pos = self._pointer(pos + 1, self.data[pos])
            elif letter == "R":
                fde_encoding, pos = self.data[pos], pos + 1
        return fde_encoding, lsda_encoding

    def _pointer(self, pos: int, encoding: int) -> tuple[int, int]:
        """A DW_EH_PE-encoded pointer at ``pos``: its value (applied: pc-relative made absolute) and the end."""
        if encoding == 0xFF:
            return 0, pos
        form = encoding & 0x0F
        sizes = {0x00: 8 if self.elf.wide else 4, 0x02: 2, 0x03: 4, 0x04: 8, 0x0A: 2, 0x0B: 4, 0x0C: 8}
        if form in (0x01, 0x09):
            value, end = self._uleb(pos)
        elif form in sizes:
            end = pos + sizes[form]
            value = int.from_bytes(
                self.data[pos:end], "little" if self.elf.order == "<" else "big", signed=form >= 0x09
            )
        else:
            raise ElfError(f"{self.elf.path}: .eh_frame pointer encoding {encoding:#x} not supported")
        if encoding & 0x70 == 0x10:  # pc-relative
            value += self.section.address + pos
        mask = (1 << (64 if self.elf.wide else 32)) - 1
        return value & mask, end

    def _uint(self, pos: int, size: int) -> int:
        return int.from_bytes(self.data[pos : pos + size], "little" if self.elf.order == "<" else "big")

    def _uleb(self, pos: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            byte = self.data[pos]
            value |= (byte & 0x7F) << shift
            pos += 1
            shift += 7
            if byte < 0x80:
                return value, pos


def containing(starts: list[int], ends: list[int], address: int) -> int | None:
    """The index of the range (sorted ``starts``, matching ``ends``) holding ``address``, if any."""
    i = bisect_right(starts, address) - 1
    return i if i >= 0 and address < ends[i] else None
