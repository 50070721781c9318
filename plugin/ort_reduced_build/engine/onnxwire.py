"""A quick look at a serialized ONNX model, without parsing it: may it name external-data files?

Finding out for sure takes ``onnx.load`` (a protobuf parse of every byte). Most models have no external
data, and searching all their bytes for ``b"location"`` costs about as much as hashing them. Here the
main graph's fields are walked in protobuf's wire format: initializers are read field by field (their
raw data skipped, never scanned) and every other field that can hold a tensor (nodes, whose attributes
hold subgraphs and tensors, and sparse initializers) is searched for ``b"location"``. A model this says
no to has no external data; a yes (or anything malformed) is settled by the full parse.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..util.fileio import Buffer

__all__ = ["may_have_external_data"]

_MODEL_GRAPH = 7
_GRAPH_INITIALIZER = 5
_GRAPH_SEARCHED = frozenset({1, 15})  # node, sparse_initializer
_TENSOR_DATA_LOCATION = 14
_EXTERNAL = 1
_FIELDS_PER_BYTE = 1 / 4096
"""Past one field per 4 KiB the walk costs more than searching the bytes: it stops and searches."""


class _Malformed(Exception):
    pass


def may_have_external_data(data: Buffer) -> bool:
    """False only when no tensor of the model's graphs can have ``data_location: EXTERNAL``."""
    budget = [max(1024, int(len(data) * _FIELDS_PER_BYTE))]
    try:
        for field, wire, start, end in _fields(data, 0, len(data), budget):
            if field == _MODEL_GRAPH and wire == 2 and _graph_may(data, start, end, budget):
                return True
    except _Malformed:
        return data.find(b"location") >= 0
    except _OverBudget as over:
        return data.find(b"location", over.position) >= 0
    return False


class _OverBudget(Exception):
    def __init__(self, position: int) -> None:
        self.position = position


def _graph_may(data: Buffer, start: int, end: int, budget: list[int]) -> bool:
    for field, wire, s, e in _fields(data, start, end, budget):
        if wire != 2:
            continue
        if field == _GRAPH_INITIALIZER:
            if any(
                f == _TENSOR_DATA_LOCATION and w == 0 and value == _EXTERNAL
                for f, w, value, _ in _fields(data, s, e, budget)
            ):
                return True
        elif field in _GRAPH_SEARCHED and data.find(b"location", s, e) >= 0:
            return True
    return False


def _fields(data: Buffer, pos: int, end: int, budget: list[int]) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, value or start, end) of each field in ``data[pos:end]``."""
    while pos < end:
        budget[0] -= 1
        if budget[0] < 0:
            raise _OverBudget(pos)
        key, pos = _varint(data, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            yield field, wire, value, pos
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > end:
                raise _Malformed
            yield field, wire, pos, pos + length
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:  # groups (3, 4) are not in ONNX's schema; 6 and 7 do not exist
            raise _Malformed
    if pos != end:
        raise _Malformed


def _varint(data: Buffer, pos: int) -> tuple[int, int]:
    result = shift = 0
    while shift < 64:
        try:
            byte = data[pos]
        except IndexError:
            raise _Malformed from None
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
    raise _Malformed
