"""Where a run's outputs go, the checks made before anything converts, and one-line write errors.

Before a run converts anything, every path it may write is checked: two outputs on one path (names
equal but for case count: they are one file on macOS and Windows), an output that is an input, an
output that is a directory, a parent that is a file, a directory that cannot be written (read-only
file system, no permission). What only a write can tell (a full disk) is reported when it happens as
``<path>: <cause>``; the outputs written before keep their content (each is replaced by one rename).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import OutputError
from ..settings import ConvertOptions
from .discover import Model, printable

__all__ = ["check_outputs", "model_stem", "optimized_destination", "ort_destination", "writing"]


def ort_destination(
    options: ConvertOptions, model: Model, style: str, ort_dir: Path | None, beside: bool
) -> Path | None:
    """Where the ``.ort`` of ``model`` in ``style`` goes: mirrored under ``ort_dir``, else beside the source;
    None for a given ``.ort`` (taken as is: nothing is written for it)."""
    if model.is_ort:
        return None
    suffix = options.ort_suffix(style)
    if ort_dir is not None:
        rel = Path(*model.relative.parts)
        return ort_dir / rel.with_name(model_stem(rel.name) + suffix)
    if beside:
        return model.path.with_name(model_stem(model.path.name) + suffix)
    return None


def optimized_destination(dest: Path) -> Path:
    return dest.with_name(dest.name.removesuffix(".ort") + ".optimized.onnx")


def model_stem(name: str) -> str:
    """``name`` without its ``.onnx`` suffix (any case)."""
    return name[: -len(".onnx")] if name.lower().endswith(".onnx") else name


def check_outputs(outputs: list[tuple[Path, str]], inputs: list[tuple[Path, str]]) -> None:
    """Refuse ``outputs`` (path, what it is made from) that cannot or must not be written; ``OutputError``."""
    identities: dict[tuple[int, int], str] = {}
    for path, shown in inputs:
        try:
            st = path.stat()
        except OSError:
            continue  # reported when it is read
        identities[st.st_dev, st.st_ino] = printable(shown)
    taken: dict[str, tuple[Path, str]] = {}
    checked: set[Path] = set()
    for path, source in outputs:
        shown = printable(str(path))
        existing: os.stat_result | None
        try:
            existing = path.stat()
        except OSError:
            existing = None
        if existing is not None and (existing.st_dev, existing.st_ino) in identities:
            raise OutputError(
                f"{shown}: is the input {identities[existing.st_dev, existing.st_ino]}; refusing to overwrite it"
            )
        if existing is not None and stat.S_ISDIR(existing.st_mode):
            raise OutputError(f"{shown}: is a directory; {source} would be written there")
        if path.parent not in checked:
            _check_parent(path)
            checked.add(path.parent)
        try:
            name = os.path.normcase(path.resolve()).casefold()
        except (OSError, RuntimeError):  # a symlink loop (RuntimeError before Python 3.13): fails when written
            name = os.path.normcase(path.absolute()).casefold()
        if name in taken:
            other = taken[name]
            raise OutputError(
                f"{other[1]} and {source} would both be written to {printable(str(other[0]))}"
                f"{'' if other[0] == path else f' (and {shown}, the same file where case does not count)'}; "
                "rename one, or convert them with separate -o directories"
            )
        taken[name] = (path, source)


def _check_parent(path: Path) -> None:
    """The nearest existing ancestor of ``path`` must be a directory this process can create files in."""
    ancestor = path.parent
    while True:
        try:
            st = ancestor.stat()
            break
        except FileNotFoundError:
            if ancestor.parent == ancestor:
                return
            ancestor = ancestor.parent
        except OSError:
            return  # a loop, say: the write reports it
    shown = printable(str(ancestor))
    if not stat.S_ISDIR(st.st_mode):
        raise OutputError(f"{shown}: not a directory, so {printable(str(path))} cannot be written")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        cause = "read-only file system" if os.statvfs(ancestor).f_flag & os.ST_RDONLY else "permission denied"
        raise OutputError(f"{shown}: {cause}; cannot write {printable(str(path))}")


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """Turn an ``OSError`` while writing ``path`` (a full disk, say) into ``OutputError('<path>: <cause>')``."""
    try:
        yield
    except OSError as exc:
        cause = exc.strerror or str(exc)
        raise OutputError(f"{printable(str(path))}: {cause[:1].lower()}{cause[1:]}") from None
