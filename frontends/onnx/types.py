"""ONNX element types and their IR counterparts."""

from __future__ import annotations

from onnx import TensorProto

from cerebro.compiler.ir import DType
from cerebro.frontends.onnx.table import OnnxImportError

ELEM_TO_DTYPE = {
    TensorProto.FLOAT: DType.f32, TensorProto.DOUBLE: DType.f64, TensorProto.INT8: DType.i8,
    TensorProto.INT16: DType.i16, TensorProto.INT32: DType.i32, TensorProto.INT64: DType.i64,
    TensorProto.UINT8: DType.u8, TensorProto.UINT16: DType.u16, TensorProto.UINT32: DType.u32,
    TensorProto.BOOL: DType.bool,
}
DTYPE_TO_ELEM = {v: k for k, v in ELEM_TO_DTYPE.items()}


def elem_dtype(elem: int, where: str) -> DType:
    if elem not in ELEM_TO_DTYPE:
        name = TensorProto.DataType.Name(elem) if elem in TensorProto.DataType.values() else str(elem)
        raise OnnxImportError(f"{where}: element type {name} is not supported "
                              f"(Cerebro supports {', '.join(d.name for d in ELEM_TO_DTYPE.values())})")
    return ELEM_TO_DTYPE[elem]
