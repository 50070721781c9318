"""Inputs for verify: the inputs file (TOML or JSON) and inputs made from a model's metadata."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..errors import VerifyError
from .wire import ORT_TYPES, STRING, numpy_dtype

__all__ = ["CannotMake", "InputSpec", "InputsFile", "ModelSpec", "make_inputs", "read_inputs_file"]

_WORDS = ("the", "cat", "sat", "on", "a", "mat", "dog", "ran", "fast", "red", "blue", "green")


@dataclass(frozen=True)
class InputSpec:
    """How to make one input (inputs file); unset fields fall back to the model's metadata."""

    shape: tuple[int, ...] | None = None
    low: float | None = None
    high: float | None = None
    """Values are drawn from [low, high) (integers: low..high-1)."""
    value: Any = None
    """A constant for every element."""
    npy: Path | None = None
    """An ``.npy`` file with the whole tensor."""


@dataclass(frozen=True)
class ModelSpec:
    """One model's entry of an inputs file."""

    inputs: Mapping[str, InputSpec] = field(default_factory=dict)
    dims: Mapping[str, int] = field(default_factory=dict)
    """Values of named dynamic dimensions (others are 1)."""
    rtol: float | None = None
    atol: float | None = None


@dataclass(frozen=True)
class InputsFile:
    """``--inputs FILE``: defaults, then per-model entries keyed by path, file name or stem."""

    defaults: ModelSpec = field(default_factory=ModelSpec)
    models: Mapping[str, ModelSpec] = field(default_factory=dict)

    def spec(self, display: str) -> ModelSpec:
        """The defaults overlaid with the entry for ``display`` (a model path as shown)."""
        path = Path(display)
        entry = next((self.models[k] for k in (display, path.name, path.stem) if k in self.models), None)
        if entry is None:
            return self.defaults
        return ModelSpec(
            inputs={**self.defaults.inputs, **entry.inputs},
            dims={**self.defaults.dims, **entry.dims},
            rtol=entry.rtol if entry.rtol is not None else self.defaults.rtol,
            atol=entry.atol if entry.atol is not None else self.defaults.atol,
        )


def read_inputs_file(path: Path) -> InputsFile:
    """Parse a TOML or JSON inputs file; raises ``VerifyError`` naming the file and the bad entry."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise VerifyError(f"{path}: cannot read inputs file: {exc.strerror}") from None
    kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
    try:
        data = json.loads(raw) if kind == "JSON" else _toml().loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise VerifyError(f"{path}: not a valid {kind} file: {exc}") from None
    data = _table(data, path, "the top level", ("defaults", "models"))
    models = data.get("models", {})
    if not isinstance(models, dict):
        raise VerifyError(f"{path}: 'models' must be a table of model entries")
    return InputsFile(
        defaults=_model_spec(data.get("defaults", {}), path, "defaults"),
        models={str(k): _model_spec(v, path, f"models.{k}") for k, v in models.items()},
    )


def _toml() -> ModuleType:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover -- Python 3.10
        import tomli as tomllib
    return tomllib


def _table(raw: object, path: Path, where: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """``raw`` as a table of known ``keys``; ``VerifyError`` naming the file and the entry otherwise."""
    if not isinstance(raw, dict):
        raise VerifyError(f"{path}: {where} must be a table")
    unknown = sorted(set(raw) - set(keys))
    if unknown:
        raise VerifyError(f"{path}: {where}: unknown key(s) {', '.join(unknown)} (expected: {', '.join(keys)})")
    return raw


def _model_spec(raw: object, path: Path, where: str) -> ModelSpec:
    raw = _table(raw, path, where, ("inputs", "dims", "rtol", "atol"))
    dims = raw.get("dims", {})
    if not isinstance(dims, dict) or not all(isinstance(v, int) and v >= 0 for v in dims.values()):
        raise VerifyError(f"{path}: {where}.dims must map dimension names to non-negative integers")
    inputs = raw.get("inputs", {})
    if not isinstance(inputs, dict):
        raise VerifyError(f"{path}: {where}.inputs must be a table of inputs")
    return ModelSpec(
        inputs={str(k): _input_spec(v, path, f"{where}.inputs.{k}") for k, v in inputs.items()},
        dims={str(k): int(v) for k, v in dims.items()},
        rtol=_tolerance(raw.get("rtol"), path, f"{where}.rtol"),
        atol=_tolerance(raw.get("atol"), path, f"{where}.atol"),
    )


def _tolerance(raw: object, path: Path, where: str) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw < 0:
        raise VerifyError(f"{path}: {where} must be a non-negative number")
    return float(raw)


def _input_spec(raw: object, path: Path, where: str) -> InputSpec:
    raw = _table(raw, path, where, ("shape", "range", "value", "npy"))
    shape = raw.get("shape")
    if shape is not None and not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
        raise VerifyError(f"{path}: {where}.shape must be a list of non-negative integers")
    bounds = raw.get("range")
    if bounds is not None and not (
        isinstance(bounds, list) and len(bounds) == 2 and all(isinstance(b, (int, float)) for b in bounds)
    ):
        raise VerifyError(f"{path}: {where}.range must be [low, high]")
    npy = raw.get("npy")
    if npy is not None and not isinstance(npy, str):
        raise VerifyError(f"{path}: {where}.npy must be a file name")
    return InputSpec(
        shape=tuple(shape) if shape is not None else None,
        low=bounds[0] if bounds else None,
        high=bounds[1] if bounds else None,
        value=raw.get("value"),
        npy=(path.parent / npy) if npy else None,
    )


class CannotMake(Exception):
    """An input the generator cannot make (not a tensor, or an unreadable .npy)."""


def make_inputs(args: Sequence[Any], spec: ModelSpec, seed: int) -> dict[str, np.ndarray]:
    """Inputs for onnxruntime ``NodeArg``s ``args`` (name, type, shape), deterministic for ``seed``."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for arg in args:
        code = ORT_TYPES.get(arg.type)
        if code is None:
            raise CannotMake(f"input {arg.name!r} is {arg.type}: give it in the inputs file")
        feeds[arg.name] = _make_input(arg, code, spec.inputs.get(arg.name, InputSpec()), spec.dims, rng)
    return feeds


def _make_input(arg: Any, code: int, spec: InputSpec, dims: Mapping[str, int], rng: np.random.Generator) -> np.ndarray:
    dtype = numpy_dtype(code)
    if spec.npy is not None:
        try:
            array: np.ndarray = np.load(spec.npy, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise CannotMake(f"input {arg.name!r}: {spec.npy}: {exc}") from None
        return array.astype(dtype)
    shape = spec.shape or tuple(_dim(d, dims) for d in (arg.shape or []))
    if spec.value is not None:
        return np.full(shape, spec.value, dtype=dtype)
    if code == STRING:
        words = rng.choice(np.array(_WORDS, dtype=object), size=(*shape, 3))
        return np.array([" ".join(w) for w in words.reshape(-1, 3)], dtype=object).reshape(shape)
    if dtype.kind == "b":
        return rng.integers(0, 2, size=shape).astype(dtype)
    if dtype.kind in "iu":
        low = int(spec.low) if spec.low is not None else 0
        high = int(spec.high) if spec.high is not None else 2  # token ids, type ids, masks, indices: all valid
        return rng.integers(low, high, size=shape).astype(dtype)
    if spec.low is not None and spec.high is not None:
        return rng.uniform(spec.low, spec.high, size=shape).astype(dtype)
    return rng.standard_normal(size=shape).astype(dtype)


def _dim(dim: object, dims: Mapping[str, int]) -> int:
    if isinstance(dim, int) and dim >= 0:
        return dim
    return dims.get(str(dim), 1) if isinstance(dim, str) else 1
