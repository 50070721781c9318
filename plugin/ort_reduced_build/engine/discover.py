"""Find the models to convert: explicit files, directories (walked), or globs relative to a root."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import DiscoveryError
from ..settings import OPTIMIZATION_LEVELS

__all__ = ["MODEL_SUFFIXES", "Model", "discover_globs", "discover_paths", "printable"]

MODEL_SUFFIXES = (".onnx", ".ort")


@dataclass(frozen=True)
class Model:
    """One model file and the names it goes by."""

    path: Path
    """Absolute path of the file."""
    display: str
    """POSIX path for headers and messages: relative to the root, else as the user gave it; ``printable``."""
    relative: PurePosixPath
    """Path below the input directory (just the name for a file argument); mirrored under ``-o``."""

    @property
    def is_ort(self) -> bool:
        return self.path.suffix.lower() == ".ort"


def _is_model(path: Path) -> bool:
    name = path.name.lower()
    # ORT's converter ignores its own *.optimized.onnx outputs; so do we.
    return name.endswith(".onnx") and not name.endswith(".optimized.onnx")


RUNTIME_SUFFIX = ".with_runtime_opt.ort"
"""What ORT's converter (and ours) calls the Runtime-style ``.ort`` of ``NAME.onnx``."""


def _ort_source_stems(name: str) -> set[str]:
    """The stems (lower case) of the ``.onnx`` files an ``.ort`` of this name may have been converted from."""
    stem = name.lower()[: -len(".ort")]
    stems = {stem}
    if stem.endswith(RUNTIME_SUFFIX[: -len(".ort")]):
        stem = stem[: -len(RUNTIME_SUFFIX) + len(".ort")]
        stems.add(stem)
    # ORT's converter names a level other than "all" in the file name: NAME.basic.ort
    stems |= {stem[: -len(level) - 1] for level in OPTIMIZATION_LEVELS if stem.endswith(f".{level}")}
    return stems


def _walked_models(directory: Path, allow_ort: bool) -> list[Path]:
    """The models below ``directory``: ``.onnx`` files, and ``.ort`` files that are not an ``.onnx``'s own
    conversion beside it (``NAME[.<level>][.with_runtime_opt].ort``: the pair is one model, the ``.onnx``)."""
    paths = list(_walk(directory))
    sources = {(p.parent, p.name[: -len(".onnx")].lower()) for p in paths if _is_model(p)}

    def is_own_conversion(ort: Path) -> bool:
        return any((ort.parent, stem) in sources for stem in _ort_source_stems(ort.name))

    ort_models = [p for p in paths if allow_ort and p.name.lower().endswith(".ort") and not is_own_conversion(p)]
    return sorted([p for p in paths if _is_model(p)] + ort_models)


def printable(text: str) -> str:
    """``text`` with every character that could end a line or confuse a terminal escaped.

    File names may hold newlines, ``\\u2028`` or control characters (a name could otherwise inject a line
    into the config header or a one-line error), and bytes that are not UTF-8 (``\\xe9``, from Python's
    surrogate escapes).
    """
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        elif "\udc80" <= ch <= "\udcff":  # an undecodable byte of the file name
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out)


def _display(path: Path, given: str, root: Path) -> str:
    try:
        return printable(path.relative_to(root).as_posix())
    except ValueError:
        return printable(PurePosixPath(given).as_posix())


def _check_special(path: Path, shown: str) -> None:
    """A FIFO, socket or device named like a model would block or never end a read: refuse it by name."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return  # a dangling or looping symlink: reported as unreadable when the model is read
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        raise DiscoveryError(f"{shown}: is {kind}, not a model file")


def _walk(directory: Path) -> Iterable[Path]:
    """Files below ``directory``, sorted; hidden directories and directory symlinks are not entered."""
    for current, dirs, files in os.walk(directory, onerror=_raise):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            yield Path(current, name)


def _raise(exc: OSError) -> None:
    raise DiscoveryError(f"{printable(str(exc.filename))}: cannot list directory: {exc.strerror}")


def discover_paths(paths: Sequence[str | Path], root: Path, *, allow_ort: bool = True) -> list[Model]:
    """Models from files and directories (walked for ``*.onnx``, and ``*.ort`` unless ``allow_ort`` is off),
    sorted by display path, no duplicates."""
    root = root.resolve()
    found: dict[Path, Model] = {}
    for given in paths:
        arg = Path(given)
        shown = printable(str(given))
        absolute = Path(os.path.abspath(arg))  # noqa: PTH100 -- normalise without resolving symlinks
        if absolute.is_dir():
            models = _walked_models(absolute, allow_ort)
            if not models:
                kinds = ".onnx or .ort models" if allow_ort else ".onnx models"
                raise DiscoveryError(f"{shown}: no {kinds} found in this directory")
            for p in models:
                rel = PurePosixPath(p.relative_to(absolute).as_posix())
                model = Model(p, _display(p, str(PurePosixPath(str(given)) / rel), root), rel)
                _check_special(p, model.display)
                found.setdefault(p, model)
        elif absolute.is_file():
            suffixes = MODEL_SUFFIXES if allow_ort else (".onnx",)
            if absolute.suffix.lower() not in suffixes:
                raise DiscoveryError(f"{shown}: not a model file (expected {' or '.join(suffixes)})")
            found.setdefault(
                absolute, Model(absolute, _display(absolute, str(given), root), PurePosixPath(absolute.name))
            )
        elif absolute.exists():
            raise DiscoveryError(f"{shown}: not a regular file or directory")
        else:
            raise DiscoveryError(f"{shown}: no such file or directory")
    return sorted(found.values(), key=lambda m: m.display)


def discover_globs(patterns: Sequence[str], root: Path, exclude: Sequence[str] = ()) -> list[Model]:
    """Models matching ``patterns`` (relative to ``root``, ``**`` allowed) minus ``exclude``."""
    root = root.resolve()
    found: dict[Path, Model] = {}
    for pattern in patterns:
        if Path(pattern).is_absolute() or ".." in PurePosixPath(pattern).parts:
            raise DiscoveryError(f"{printable(pattern)}: model globs must be relative to the project root")
        matches = [p for p in sorted(root.glob(pattern)) if p.is_file() and _is_model(p)]
        if not matches:
            raise DiscoveryError(f"{printable(pattern)}: matches no .onnx file under {printable(str(root))}")
        for p in matches:
            rel = PurePosixPath(p.relative_to(root).as_posix())
            if any(rel.match(ex) or p.relative_to(root).match(ex) for ex in exclude):
                continue
            found.setdefault(p, Model(p, printable(rel.as_posix()), rel))
    if not found:
        raise DiscoveryError(f"no models left after excluding {', '.join(exclude)}")
    return sorted(found.values(), key=lambda m: m.display)
