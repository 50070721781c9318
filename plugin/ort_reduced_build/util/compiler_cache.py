"""The build stage's compiler cache: ccache or sccache as ORT's C/C++ compiler launcher, and the
environment that lets its results be reused by another build directory or another machine.

A cache hit needs the same compile command, and ORT's commands hold absolute paths: the source tree,
the build directory (generated sources, ``_deps``) and the dependency sources. ``environment`` makes
them relative under their common parent: ccache's ``base_dir`` (``CCACHE_BASEDIR``) rewrites the
absolute paths below it relative to the compiler's working directory, and ``hash_dir = false``
(``CCACHE_NOHASHDIR``) keeps that directory out of the hash of compilations with debug information;
sccache (0.15 and newer) reads ``SCCACHE_BASEDIRS``. A fresh build directory then hits the objects
of another one whose source and dependency trees lie the same way relative to it.

A remote storage URL reaches the tool in its own variable: ccache's ``CCACHE_REMOTE_STORAGE``
(``redis://``, ``redis+unix:``, ``http://``, ``https://`` where the ccache has an HTTPS helper,
``file:``), sccache's ``SCCACHE_REDIS_ENDPOINT`` (``redis://``, ``rediss://``) or
``SCCACHE_WEBDAV_ENDPOINT`` (``http(s)://``, e.g. a ccache HTTP storage server).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CACHE_TOOLS",
    "CompilerCache",
    "base_dir",
    "environment",
    "find",
    "named_tool",
    "process_environment",
    "remote_problem",
]

log = logging.getLogger("ort_reduced_build")

CACHE_TOOLS = ("ccache", "sccache")

_REMOTE_VARIABLES: Mapping[str, Mapping[str, str]] = {
    "ccache": dict.fromkeys(("file", "http", "https", "redis", "redis+unix"), "CCACHE_REMOTE_STORAGE"),
    "sccache": {
        "redis": "SCCACHE_REDIS_ENDPOINT",
        "rediss": "SCCACHE_REDIS_ENDPOINT",
        "redis+unix": "SCCACHE_REDIS_ENDPOINT",
        "http": "SCCACHE_WEBDAV_ENDPOINT",
        "https": "SCCACHE_WEBDAV_ENDPOINT",
    },
}
"""Per tool, the remote URL schemes it takes and the variable each one goes in."""


@dataclass(frozen=True)
class CompilerCache:
    """The compiler cache a build runs its compiles through (its launchers are ``BuildRequest``'s)."""

    tool: str
    """``ccache`` or ``sccache``."""
    remote: str | None = None
    """Remote storage shared by several machines, e.g. ``redis://cache:6379``; None: local only."""


def find(tool: str) -> Path | None:
    """``tool`` on PATH, else beside this Python (``pip install ort-reduced-build[ccache]``); None if neither."""
    found = shutil.which(tool)
    if found:
        return Path(found)
    beside = Path(sys.executable).parent / (f"{tool}.exe" if os.name == "nt" else tool)
    return beside if beside.is_file() and os.access(beside, os.X_OK) else None


def named_tool(launcher: str) -> str | None:
    """The cache tool a launcher command names (``/usr/bin/ccache`` -> ``ccache``), if any."""
    name = Path(launcher).name.removesuffix(".exe")
    return name if name in CACHE_TOOLS else None


def remote_problem(tool: str, url: str) -> str | None:
    """Why ``url`` cannot be ``tool``'s remote storage (None: it can)."""
    schemes = _REMOTE_VARIABLES[tool]
    scheme = url.partition(":")[0].lower() if ":" in url else ""
    if scheme in schemes and url[len(scheme) + 1 :].strip("/"):
        return None
    takes = ", ".join(f"{s}://" if s not in ("file", "redis+unix") else f"{s}:" for s in sorted(schemes))
    return f"{url!r} is not a remote storage URL {tool} takes ({takes})"


def base_dir(paths: Iterable[Path]) -> Path | None:
    """The deepest directory holding every path (None when that is the filesystem root: ccache's manual
    warns that a root base directory rewrites the system headers' paths too)."""
    absolute = [str(Path(p).absolute()) for p in paths]
    if not absolute:
        return None
    common = Path(os.path.commonpath(absolute))
    return None if common == Path(common.anchor) else common


def environment(cache: CompilerCache, roots: Iterable[Path]) -> dict[str, str]:
    """The variables ``cache.tool`` needs so that builds under other directories reuse its results."""
    env: dict[str, str] = {}
    base = base_dir(roots)
    if cache.tool == "ccache":
        env["CCACHE_NOHASHDIR"] = "1"
        if base is not None:
            env["CCACHE_BASEDIR"] = str(base)
    elif base is not None:
        env["SCCACHE_BASEDIRS"] = str(base)
    if cache.remote:
        scheme = cache.remote.partition(":")[0].lower()
        env[_REMOTE_VARIABLES[cache.tool][scheme]] = cache.remote
    return env


def process_environment(cache: CompilerCache | None, roots: list[Path]) -> dict[str, str] | None:
    """This process's environment plus ``environment`` for the build (None: no cache, nothing to add)."""
    if cache is None:
        return None
    if base_dir(roots) is None:
        log.warning(
            "warning: %s share no parent directory below the root: %s reuses only the objects of builds at "
            "the same absolute paths",
            ", ".join(map(str, roots)),
            cache.tool,
        )
    return {**os.environ, **environment(cache, roots)}
