"""Path functions for build systems, as ``pybind11.commands`` has: ``ort-reduced-build --cmakedir`` prints them."""

from __future__ import annotations

from pathlib import Path

__all__ = ["get_cmake_dir"]

_CONFIG = "OrtReducedBuildConfig.cmake"


def get_cmake_dir() -> str:
    """The directory holding ``OrtReducedBuildConfig.cmake``, for ``OrtReducedBuild_DIR``/``CMAKE_PREFIX_PATH``.

    An installed wheel ships it as ``ort_reduced_build/cmake``; a development checkout keeps it in the
    repository's ``cmake/``. Raises ``ImportError`` with the reason when neither is there.
    """
    package = Path(__file__).resolve().parent
    candidates = (package / "cmake", package.parent.parent / "cmake")
    for directory in candidates:
        if (directory / _CONFIG).is_file():
            return str(directory)
    msg = f"ort_reduced_build: {_CONFIG} not found in {' or '.join(map(str, candidates))}; reinstall the package"
    raise ImportError(msg)
