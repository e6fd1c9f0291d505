"""Element types of the IR, with their numpy and .cbx spellings."""

from __future__ import annotations

import enum

import ml_dtypes
import numpy as np


class DType(enum.Enum):
    """An element type; the value is the .cbx code from runtime_kmod/include/cerebro/cbx.h."""

    f32 = 1
    f64 = 2
    i8 = 3
    i16 = 4
    i32 = 5
    i64 = 6
    u8 = 7
    bool = 8
    u16 = 9
    u32 = 10
    f16 = 11  # f16 and bf16 are storage types: arithmetic converts to f32 and rounds back (as XLA on CPU)
    bf16 = 12

    @property
    def code(self) -> int:
        return self.value

    @property
    def numpy(self) -> np.dtype:
        return np.dtype(_NUMPY_NAMES[self])

    @property
    def itemsize(self) -> int:
        return self.numpy.itemsize

    @property
    def is_float(self) -> bool:
        return self in (DType.f32, DType.f64)

    @property
    def is_half(self) -> bool:
        """A 16-bit float: loaded, stored, moved and converted to/from f32, never computed on directly."""
        return self in (DType.f16, DType.bf16)

    @property
    def is_int(self) -> bool:
        return self in (DType.i8, DType.i16, DType.i32, DType.i64, DType.u8, DType.u16, DType.u32)

    @property
    def is_signed(self) -> bool:
        return self in (DType.i8, DType.i16, DType.i32, DType.i64) or self.is_float

    def __repr__(self) -> str:
        return self.name


_NUMPY_NAMES = {
    DType.f32: "float32",
    DType.f64: "float64",
    DType.i8: "int8",
    DType.i16: "int16",
    DType.i32: "int32",
    DType.i64: "int64",
    DType.u8: "uint8",
    DType.bool: "bool",
    DType.u16: "uint16",
    DType.u32: "uint32",
    DType.f16: "float16",
    DType.bf16: ml_dtypes.bfloat16,  # numpy has no bfloat16 of its own; ml_dtypes (a JAX dependency) adds it
}
_FROM_NUMPY = {np.dtype(v): k for k, v in _NUMPY_NAMES.items()}


def dtype_from_numpy(dtype: object) -> DType:
    """The IR type of a numpy dtype (or anything np.dtype accepts); ValueError if none."""
    key = np.dtype(dtype)
    if key not in _FROM_NUMPY:
        raise ValueError(f"unsupported element type {key}; Cerebro supports "
                         + ", ".join(sorted(np.dtype(v).name for v in _NUMPY_NAMES.values())))
    return _FROM_NUMPY[key]


def dtype_from_code(code: int) -> DType:
    try:
        return DType(code)
    except ValueError:
        raise ValueError(f"unknown dtype code {code}") from None
