"""The verify runner's files: the inputs it feeds and the outputs it writes (native byte order).

``INPUTS``: ``ORBVIN1\\n``, a u32 count (``0xFFFFFFFF``: create the session only), then per input its
name and a tensor. ``OUTPUTS``: ``ORBVOUT1``, a u32 count, then per output its name and a value. A name
is a u32 length and UTF-8 bytes. A value is a u32 kind: 1 a tensor (u32 element type, u32 rank, i64
dims, then the elements: raw, or for strings each a u32 length and bytes), 2 a sequence or 3 a map
(u32 count, then that many values; a map's two are its keys and its values).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["ORT_TYPES", "STRING", "decode_outputs", "encode_inputs", "numpy_dtype"]

IN_MAGIC = b"ORBVIN1\n"
OUT_MAGIC = b"ORBVOUT1"
SESSION_ONLY = 0xFFFFFFFF

# ONNX element type codes (TensorProto.DataType, = ONNXTensorElementDataType) <-> numpy.
_DTYPES: dict[int, np.dtype[Any]] = {
    1: np.dtype(np.float32),
    2: np.dtype(np.uint8),
    3: np.dtype(np.int8),
    4: np.dtype(np.uint16),
    5: np.dtype(np.int16),
    6: np.dtype(np.int32),
    7: np.dtype(np.int64),
    9: np.dtype(np.bool_),
    10: np.dtype(np.float16),
    11: np.dtype(np.float64),
    12: np.dtype(np.uint32),
    13: np.dtype(np.uint64),
}
STRING = 8
_CODES = {dtype: code for code, dtype in _DTYPES.items()}
ORT_TYPES = {  # onnxruntime's NodeArg.type names
    "tensor(float)": 1,
    "tensor(uint8)": 2,
    "tensor(int8)": 3,
    "tensor(uint16)": 4,
    "tensor(int16)": 5,
    "tensor(int32)": 6,
    "tensor(int64)": 7,
    "tensor(string)": STRING,
    "tensor(bool)": 9,
    "tensor(float16)": 10,
    "tensor(double)": 11,
    "tensor(uint32)": 12,
    "tensor(uint64)": 13,
}


def numpy_dtype(code: int) -> np.dtype[Any]:
    """The numpy type of an element type code (strings: object)."""
    return np.dtype(object) if code == STRING else _DTYPES[code]


def encode_inputs(feeds: Mapping[str, np.ndarray] | None) -> bytes:
    """The runner's INPUTS file; None asks for session creation only."""
    if feeds is None:
        return IN_MAGIC + struct.pack("=I", SESSION_ONLY)
    parts = [IN_MAGIC, struct.pack("=I", len(feeds))]
    for name, array in feeds.items():
        parts += [_encode_text(name.encode()), _encode_tensor(np.asarray(array))]
    return b"".join(parts)


def _encode_text(data: bytes) -> bytes:
    return struct.pack("=I", len(data)) + data


def _encode_tensor(array: np.ndarray) -> bytes:
    code = STRING if array.dtype.kind in "OUS" else _CODES[array.dtype]
    head = struct.pack(f"=II{array.ndim}q", code, array.ndim, *array.shape)
    if code == STRING:
        return head + b"".join(_encode_text(str(s).encode()) for s in array.ravel())
    return head + np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("=")).tobytes()


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, size: int) -> bytes:
        if self.at + size > len(self.data):
            raise ValueError("truncated runner output")
        chunk = self.data[self.at : self.at + size]
        self.at += size
        return chunk

    def u32(self) -> int:
        return int(struct.unpack("=I", self.take(4))[0])


def decode_outputs(data: bytes) -> dict[str, object]:
    """The runner's OUTPUTS file: name -> ndarray, list (sequence) or dict (map)."""
    reader = _Reader(data)
    if reader.take(8) != OUT_MAGIC:
        raise ValueError("not a runner output file")
    outputs = {}
    for _ in range(reader.u32()):
        name = reader.take(reader.u32()).decode("utf-8", "replace")
        outputs[name] = _decode_value(reader)
    return outputs


def _decode_value(reader: _Reader) -> object:
    kind = reader.u32()
    if kind == 1:
        code, rank = reader.u32(), reader.u32()
        shape = struct.unpack(f"={rank}q", reader.take(8 * rank))
        count = math.prod(shape)
        if code == STRING:
            strings = [reader.take(reader.u32()).decode("utf-8", "replace") for _ in range(count)]
            return np.array(strings, dtype=object).reshape(shape)
        dtype = _DTYPES[code]
        return np.frombuffer(reader.take(count * dtype.itemsize), dtype=dtype).reshape(shape)
    count = reader.u32()
    values = [_decode_value(reader) for _ in range(count)]
    if kind == 3:  # a map: keys, values
        keys, items = values
        assert isinstance(keys, np.ndarray)
        assert isinstance(items, np.ndarray)
        return {_scalar(k): v for k, v in zip(keys.ravel(), items.ravel(), strict=True)}
    return values


def _scalar(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value
