"""Which addresses a library's code refers to: calls, jumps and address loads, read from ``objdump -d``.

``size`` follows these references (and the relocations, which hold the data's pointers) to find the bytes
only one operator's kernels reach. binutils' ``objdump`` for the library's machine does the decoding
(``aarch64-linux-gnu-objdump`` for an aarch64 library built here, ``llvm-objdump`` where that is what
there is); without one, ``disassemble`` says so and the code's own references are missing.
"""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
from pathlib import Path

__all__ = ["binutil", "disassembler", "references"]

_TRIPLES = {
    "x86_64": ("x86_64-linux-gnu",),
    "aarch64": ("aarch64-linux-gnu", "aarch64-linux-android", "aarch64-none-linux-gnu"),
    "arm": ("arm-linux-gnueabihf", "arm-linux-androideabi", "arm-linux-gnueabi"),
    "x86": ("i686-linux-gnu", "i686-linux-android"),
    "riscv": ("riscv64-linux-gnu",),
}
_HOST = {"amd64": "x86_64", "arm64": "aarch64", "i686": "x86", "i386": "x86"}
_LINE = re.compile(r"^\s*([0-9a-f]+):\s+(\S+)\s*(.*)$")
_TARGET = re.compile(r"(?:^|[\s,])(?:0x)?([0-9a-f]+) <")
_COMMENT = re.compile(r"(?:^|\s)[#@] (?:0x)?([0-9a-f]+)\b")
"""x86's rip-relative operand (``# 1ad40 <sym>``) and arm's literal (``@ 1ad40``); not aarch64's ``// #16``."""
_BRANCH = re.compile(r"^(call|j|b|bl|blx|cb|tb|jal|beq|bne|blt|bge|bltu|bgeu)", re.IGNORECASE)
_ADRP = re.compile(r"^(x\d+), (?:0x)?([0-9a-f]+)")
_ADD = re.compile(r"^(x\d+), (x\d+), #(?:0x)?([0-9a-f]+)$")
_LOAD = re.compile(r"\[(x\d+), #(?:0x)?([0-9a-f]+)\]")
_NO_DESTINATION = re.compile(r"^(st|cmp|cmn|tst|cb|tb|prfm|b\.|(b|bl|br|blr|ret|nop)$)")
"""aarch64 instructions whose first operand is not a register they write (stores, compares, branches)."""


def binutil(machine: str, tool: str, *, gcc: bool = False) -> str | None:
    """The binutils ``tool`` (``objdump``, ``nm``) for ``machine``'s files: the target's own, the host's
    when it is that machine, else LLVM's (None when there is none). ``gcc``: prefer GCC's wrapper
    (``gcc-nm``: it reads LTO objects)."""
    host = _HOST.get(platform.machine().lower(), platform.machine().lower())
    prefixes = [f"{triple}-" for triple in _TRIPLES.get(machine, ())] + ([""] if host == machine else [])
    names = [f"{p}gcc-{tool}" for p in prefixes] if gcc else []
    names += [f"{p}{tool}" for p in prefixes] + [f"llvm-{tool}", f"{tool}-multiarch"]
    return next((found for name in names if (found := shutil.which(name))), None)


def disassembler(machine: str) -> str | None:
    """An ``objdump`` that reads code for ``machine`` (None when there is none)."""
    return binutil(machine, "objdump")


def references(tool: str, library: Path) -> list[tuple[int, int]]:
    """``(instruction address, address it refers to)`` for every branch and address load of the code."""
    argv = [tool, "-d", "--no-show-raw-insn", "-w", str(library)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, errors="replace", check=False)
    except OSError:
        return []
    if proc.returncode != 0:
        return []
    out: list[tuple[int, int]] = []
    pages: dict[str, int] = {}  # aarch64: the page an adrp put in a register
    for line in proc.stdout.splitlines():
        found = _LINE.match(line)
        if found is None:
            if line.endswith(">:"):
                pages.clear()  # a new function
            continue
        where, mnemonic, operands = int(found[1], 16), found[2], found[3]
        target = _target(mnemonic.lower(), operands, pages)
        if target is not None:
            out.append((where, target))
    return out


def _page_target(mnemonic: str, operands: str, pages: dict[str, int]) -> int | None:
    """aarch64: an address made of the page an ``adrp`` loaded and an ``add``/load/store offset."""
    if mnemonic == "add" and (found := _ADD.match(operands)) and found[2] in pages:
        return pages[found[2]] + int(found[3], 16)
    if mnemonic.startswith(("ldr", "str", "ldp", "stp")) and (found := _LOAD.search(operands)) and found[1] in pages:
        return pages[found[1]] + int(found[2], 16)
    return None


def _target(mnemonic: str, operands: str, pages: dict[str, int]) -> int | None:
    if mnemonic == "adrp" and (found := _ADRP.match(operands)):
        pages[found[1]] = int(found[2], 16)
        return None
    target = _page_target(mnemonic, operands, pages)
    if pages and not _NO_DESTINATION.match(mnemonic):  # the register now holds something else
        pages.pop("x" + operands.split(",", 1)[0].strip()[1:], None)
    if target is not None:
        return target
    if (_BRANCH.match(mnemonic) or mnemonic in ("adr", "lea")) and (found := _TARGET.search(operands)):
        return int(found[1], 16)
    if "//" not in operands and (found := _COMMENT.search(operands)):
        return int(found[1], 16)
    return None
