"""The plugin's version, and the installed onnxruntime's (read without importing it): the lowest module."""

from __future__ import annotations

import functools
import importlib.util
import re
from contextlib import suppress
from pathlib import Path

__version__ = "0.1.0"

_VERSION = re.compile(r"^__version__\s*=\s*[\"']([^\"']+)[\"']", re.MULTILINE)


@functools.cache
def onnxruntime_version() -> str:
    """The installed onnxruntime's version, without importing it (that costs a second).

    Read from its ``__init__.py`` (``__version__``, as ``onnxruntime.__version__`` reports it), else from
    its metadata; ``importlib.metadata.PackageNotFoundError`` when it is not installed.
    """
    spec = importlib.util.find_spec("onnxruntime")
    if spec is not None and spec.origin:
        with suppress(OSError, UnicodeDecodeError):
            found = _VERSION.search(Path(spec.origin).read_text(encoding="utf-8"))
            if found:
                return found[1]
    from importlib import metadata

    return metadata.version("onnxruntime")
