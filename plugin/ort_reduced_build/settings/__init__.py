"""Settings: the typed options every shell shares (``model``), the ``[tool.ort-reduced-build]`` schema
(``schema``) and the sources settings are read from (``sources``). ``ort_reduced_build.settings`` is a
public import path: it keeps the names of ``model``."""

from __future__ import annotations

from .model import *  # noqa: F403 -- the public names are model's, listed once, in its __all__
from .model import __all__ as __all__
