"""A quick read of an ORT-format model's flatbuffer: the fields the analysis walks, straight from the bytes.

ORT's generated ``fbs`` classes make an object and a dozen calls per field read: walking the values and
nodes of a 3,600-node model through them costs about as much CPU as converting it. Here ``struct`` reads
the few fields needed, and each vtable (most tables of a kind share one) is decoded once. The slots are
those of ORT's schema (onnxruntime/core/flatbuffers/schema/ort.fbs, format versions 5 and 6), in schema
order. A malformed buffer raises ``struct.error``, ``IndexError`` or ``ValueError``; a position of 0
stands for an absent field, as no table lies at offset 0.
"""

from __future__ import annotations

import struct

from ..util.fileio import Buffer

__all__ = ["Tables"]

_U8, _U16, _I32, _U32 = (struct.Struct(f"<{code}") for code in "BHiI")

SESSION_MODEL = 1
MODEL_GRAPH = 7
GRAPH_NODE_ARGS, GRAPH_NODES, GRAPH_SPARSE_INITIALIZERS = 1, 2, 7
NODE_DOMAIN, NODE_SINCE_VERSION, NODE_OP_TYPE, NODE_INPUTS, NODE_OUTPUTS, NODE_ATTRIBUTES = 2, 3, 5, 8, 9, 10
ATTRIBUTE_TYPE, ATTRIBUTE_G, ATTRIBUTE_GRAPHS = 2, 7, 12
ATTRIBUTE_GRAPH, ATTRIBUTE_GRAPHS_TYPE = 5, 10
"""``AttributeType`` values of a graph and a list of graphs."""
VALUE_INFO_NAME, VALUE_INFO_TYPE = 0, 2
TYPE_INFO_VALUE_TYPE, TYPE_INFO_VALUE = 1, 2
TENSOR_TYPE, SEQUENCE_TYPE, MAP_TYPE = 1, 2, 3
"""``TypeInfoValue`` kinds."""
TENSOR_ELEM_TYPE = SEQUENCE_ELEM_TYPE = MAP_KEY_TYPE = 0
MAP_VALUE_TYPE = 1


class Tables:
    """Tables of one flatbuffer, by position."""

    def __init__(self, data: Buffer) -> None:
        self.data = data
        self._vtables: dict[int, tuple[int, ...]] = {}

    def root(self) -> int:
        """The root table (the ``InferenceSession``)."""
        return int(_U32.unpack_from(self.data, 0)[0])

    def field(self, table: int, slot: int) -> int:
        """Where field ``slot`` of ``table`` is stored; 0 when the table does not have it."""
        vtable = table - _I32.unpack_from(self.data, table)[0]
        offsets = self._vtables.get(vtable)
        if offsets is None:
            count = (_U16.unpack_from(self.data, vtable)[0] - 4) // 2
            offsets = self._vtables[vtable] = struct.unpack_from(f"<{max(count, 0)}H", self.data, vtable + 4)
        offset = offsets[slot] if slot < len(offsets) else 0
        return table + offset if offset else 0

    def table(self, table: int, slot: int) -> int:
        """The table (or union value) field ``slot`` points to; 0 when absent."""
        at = self.field(table, slot)
        return at + _U32.unpack_from(self.data, at)[0] if at else 0

    def string(self, table: int, slot: int) -> bytes | None:
        at = self.table(table, slot)
        if not at:
            return None
        length = _U32.unpack_from(self.data, at)[0]
        return bytes(self.data[at + 4 : at + 4 + length])

    def int32(self, table: int, slot: int) -> int:
        at = self.field(table, slot)
        return int(_I32.unpack_from(self.data, at)[0]) if at else 0

    def uint8(self, table: int, slot: int) -> int:
        at = self.field(table, slot)
        return int(_U8.unpack_from(self.data, at)[0]) if at else 0

    def tables(self, table: int, slot: int) -> list[int]:
        """The tables of the vector field ``slot`` (empty when absent)."""
        vector = self.table(table, slot)
        if not vector:
            return []
        count = _U32.unpack_from(self.data, vector)[0]
        start = vector + 4
        offsets = struct.unpack_from(f"<{count}I", self.data, start)
        return [start + 4 * i + offset for i, offset in enumerate(offsets)]

    def strings(self, table: int, slot: int) -> list[bytes]:
        """The strings of the vector field ``slot`` (empty when absent)."""
        data = self.data
        out = []
        for at in self.tables(table, slot):
            length = _U32.unpack_from(data, at)[0]
            out.append(bytes(data[at + 4 : at + 4 + length]))
        return out

    def length(self, table: int, slot: int) -> int:
        """The length of the vector field ``slot`` (0 when absent)."""
        vector = self.table(table, slot)
        return int(_U32.unpack_from(self.data, vector)[0]) if vector else 0

    def graph(self) -> int:
        """The main graph's table; 0 when the model has none."""
        model = self.table(self.root(), SESSION_MODEL)
        return self.table(model, MODEL_GRAPH) if model else 0
