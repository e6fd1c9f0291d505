"""The main graph's initializers as arrays over the model's own bytes, without copies.

Parsing a serialized ModelProto copies every initializer's raw_data into the message, and reading
`tensor.raw_data` copies it again (onnx.numpy_helper.to_array): BERT-base's 440 MB cost 0.55 of its
0.8 CPU s of import. Here the protobuf wire format is walked once: each plain numeric initializer's
raw_data becomes a read-only numpy view of the caller's bytes, and the message parsed is the model
with those fields left out (the rest of it is small). Anything unusual (another element type, a
size that does not match the dims, external data, a wire type the walk does not expect) is left in
the message for onnx to convert or refuse as before.
"""

from __future__ import annotations

import sys

import numpy as np
from onnx import TensorProto

MODEL_GRAPH, GRAPH_INITIALIZER = 7, 5  # field numbers (onnx.proto)
DIMS, DATA_TYPE, SEGMENT, NAME, RAW_DATA, DATA_LOCATION = 1, 2, 3, 8, 9, 14
# element types whose raw_data is plain little-endian numpy data
PLAIN = {TensorProto.FLOAT: np.float32, TensorProto.DOUBLE: np.float64, TensorProto.FLOAT16: np.float16,
         TensorProto.INT8: np.int8, TensorProto.INT16: np.int16, TensorProto.INT32: np.int32,
         TensorProto.INT64: np.int64, TensorProto.UINT8: np.uint8, TensorProto.UINT16: np.uint16,
         TensorProto.UINT32: np.uint32, TensorProto.UINT64: np.uint64, TensorProto.BOOL: np.bool_}


class _Unexpected(Exception):
    """Bytes the walk does not handle: the caller parses the model as it is."""


def _varint(data: memoryview, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise _Unexpected
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if byte < 0x80:
            return value, at
        shift += 7


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _fields(data: memoryview) -> list[tuple[int, int, memoryview, memoryview]]:
    """(field number, wire type, the whole field's bytes, its value's bytes or payload) of one message."""
    fields = []
    at = 0
    while at < len(data):
        start = at
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value_start = at
            _, at = _varint(data, at)
        elif wire == 2:
            length, value_start = _varint(data, at)
            at = value_start + length
        elif wire in (1, 5):
            value_start, at = at, at + (8 if wire == 1 else 4)
        else:
            raise _Unexpected
        if at > len(data):
            raise _Unexpected
        fields.append((number, wire, data[start:at], data[value_start:at]))
    return fields


def _length_delimited(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | 2) + _encode_varint(len(payload)) + payload


def _tensor(fields: list) -> np.ndarray | None:
    """The initializer's array over its raw_data, or None to leave it to onnx."""
    numbers = [number for number, _, _, _ in fields]
    raw = [value for number, wire, _, value in fields if number == RAW_DATA and wire == 2]
    types = [_varint(value, 0)[0] for number, wire, _, value in fields if number == DATA_TYPE and wire == 0]
    if len(raw) != 1 or len(types) != 1 or types[0] not in PLAIN or SEGMENT in numbers or DATA_LOCATION in numbers:
        return None
    dims: list[int] = []
    for number, wire, _, value in fields:
        if number == DIMS and wire == 0:
            dims.append(_varint(value, 0)[0])
        elif number == DIMS and wire == 2:
            at = 0
            while at < len(value):
                dim, at = _varint(value, at)
                dims.append(dim)
        elif number == DIMS:
            return None
    dtype = np.dtype(PLAIN[types[0]])
    if any(d >= 1 << 62 for d in dims) or int(np.prod(dims, dtype=object)) * dtype.itemsize != len(raw[0]):
        return None
    return np.frombuffer(raw[0], dtype).reshape(dims)


def split_raw_weights(data: bytes) -> tuple[bytes, dict[int, np.ndarray]]:
    """(the model's bytes with the raw_data of the initializers returned left out, main-graph initializer
    index -> its array, a view of data); (data, {}) where the walk does not apply."""
    if sys.byteorder != "little":
        return data, {}
    try:
        return _split(memoryview(data))
    except _Unexpected:
        return data, {}


def _split(data: memoryview) -> tuple[bytes, dict[int, np.ndarray]]:
    model = _fields(data)
    if [number for number, _, _, _ in model].count(MODEL_GRAPH) != 1:
        raise _Unexpected
    arrays: dict[int, np.ndarray] = {}
    parts = []
    for number, wire, whole, value in model:
        if number != MODEL_GRAPH:
            parts.append(whole)
            continue
        if wire != 2:
            raise _Unexpected
        graph = []
        initializers = 0
        for g_number, g_wire, g_whole, g_value in _fields(value):
            if g_number != GRAPH_INITIALIZER or g_wire != 2:
                graph.append(g_whole)
                continue
            tensor = _fields(g_value)
            array = _tensor(tensor)
            if array is None:
                graph.append(g_whole)
            else:
                arrays[initializers] = array
                kept = b"".join(f_whole for f_number, _, f_whole, _ in tensor if f_number != RAW_DATA)
                graph.append(_length_delimited(GRAPH_INITIALIZER, kept))
            initializers += 1
        parts.append(_length_delimited(MODEL_GRAPH, b"".join(graph)))
    return b"".join(parts), arrays
