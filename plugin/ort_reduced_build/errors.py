"""One base exception and a narrow subclass per stage.

Messages name the model, key or file, and the cause, on one line. The shells print ``error: <message>``
and exit non-zero without a traceback.
"""

from __future__ import annotations

__all__ = [
    "AnalyzeError",
    "BuildError",
    "CacheError",
    "ConfigError",
    "ConversionError",
    "DiscoveryError",
    "ModelError",
    "OrtReducedBuildError",
    "OutputError",
    "SettingsError",
    "SizeError",
    "VerifyError",
]


class OrtReducedBuildError(Exception):
    """Base of every expected failure: bad input, a failed model, a failed build."""


class SettingsError(OrtReducedBuildError):
    """An unknown or invalid setting (pyproject, ``-C``, environment or CLI)."""


class DiscoveryError(OrtReducedBuildError):
    """A model path or glob that cannot be used."""


class ModelError(OrtReducedBuildError):
    """A model that cannot be used as given (e.g. external data outside its directory); fails that model."""


class ConversionError(OrtReducedBuildError):
    """One or more models failed to convert; ``failures`` holds ``(path, cause)`` pairs."""

    def __init__(self, failures: list[tuple[str, str]]) -> None:
        self.failures = failures
        super().__init__("\n".join(f"{path}: {cause}" for path, cause in failures))


class AnalyzeError(OrtReducedBuildError):
    """An ``.ort`` file that cannot be read."""


class ConfigError(OrtReducedBuildError):
    """A config file that does not follow ORT's grammar, or configs that cannot be combined."""


class OutputError(OrtReducedBuildError):
    """Outputs that would overwrite an input or each other; refused before anything is written."""


class CacheError(OrtReducedBuildError):
    """The cache directory cannot be used."""


class BuildError(OrtReducedBuildError):
    """The minimal ONNX Runtime build failed or cannot start."""


class VerifyError(OrtReducedBuildError):
    """The built library cannot be verified: no runner, no emulator, an unusable inputs file."""


class SizeError(OrtReducedBuildError):
    """A library whose size cannot be attributed: not ELF, unreadable, a link map of another build."""
