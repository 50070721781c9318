"""Where a library's bytes go: ``report`` measures a library (per op kernel, runtime part, section) from
its symbols (``symbols``), the link map (``linkmap``) and the references between its pieces (``xrefs``,
``graph``). ``ort_reduced_build.size`` is a public import path: it keeps the names of ``report``."""

from __future__ import annotations

from .report import *  # noqa: F403 -- the public names are report's, listed once, in its __all__
from .report import __all__ as __all__
