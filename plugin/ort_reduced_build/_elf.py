"""The machine an ELF file (a library, a program) was built for, from its header."""

from __future__ import annotations

from pathlib import Path

__all__ = ["machine"]

_MACHINES = {3: "x86", 8: "mips", 20: "ppc", 21: "ppc64", 22: "s390x", 40: "arm", 62: "x86_64", 183: "aarch64"}
_MACHINES |= {243: "riscv"}


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
