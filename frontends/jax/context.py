"""What a lowering rule sees: a Builder (compiler/ir/builder.py) at the current source location, plus JAX's
constants, nested jaxprs and failures."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
from jax._src import source_info_util

import cerebro
from cerebro.compiler.ir import DType, Graph, Value, dtype_from_numpy
from cerebro.compiler.ir.builder import Builder

SHARED_CONST_SIZE = 16


class UnsupportedPrimitive(NotImplementedError):
    """A JAX primitive (or a use of one) the frontend cannot express in the IR."""


# Cerebro's own sources (the cerebro and frontends packages): a frame there is never the user's line.
_OWN_DIRS = (os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep,
             os.path.dirname(os.path.abspath(cerebro.__file__)) + os.sep)


def location(source_info: object) -> str:
    """'file.py:14 (in fn)' for the innermost frame of the user's own code (outside installed packages)."""
    traceback = getattr(source_info, "traceback", None)
    frames = list(source_info_util.user_frames(traceback)) if traceback is not None else []
    frames = [f for f in frames if not os.path.abspath(f.file_name).startswith(_OWN_DIRS)]
    if not frames:
        return ""
    own = [f for f in frames if "site-packages" not in f.file_name and "dist-packages" not in f.file_name]
    frame = (own or frames)[0]
    return f"{os.path.basename(frame.file_name)}:{frame.start_line} (in {frame.function_name})"


def ir_dtype(dtype: object, where: str | Callable[[], str]) -> DType:
    """The IR type of a JAX dtype; where (or a function computing it, when that is costly) names the place."""
    try:
        return dtype_from_numpy(dtype)
    except (TypeError, ValueError):
        place = where() if callable(where) else where
        raise UnsupportedPrimitive(f"unsupported element type {dtype} at {place}") from None


class Context(Builder):
    """Builds IR for one traced function; `loc` is the location of the equation being lowered."""

    def __init__(self, graph: Graph, lower: Callable[[Context, Any, list, list[Value]], list[Value]]) -> None:
        super().__init__(graph)
        self.primitive = ""
        self._lower = lower
        self._small_consts: dict[tuple, Value] = {}

    def inline(self, jaxpr: Any, consts: list, args: list[Value]) -> list[Value]:
        """Lower a nested jaxpr (control-flow bodies) in place; its equations keep their own locations."""
        loc, primitive = self.loc, self.primitive
        try:
            return self._lower(self, jaxpr, consts, args)
        finally:
            self.loc, self.primitive = loc, primitive

    @property
    def where(self) -> str:
        """loc, or (for an equation with no frame of the user's, e.g. a jax function traced directly)
        the traced function."""
        return self.loc or f"traced function '{self.graph.name}'"

    def fail(self, message: str) -> UnsupportedPrimitive:
        return UnsupportedPrimitive(f"unsupported JAX primitive '{self.primitive}' at {self.where}: {message}")

    def dtype(self, dtype: object) -> DType:
        return ir_dtype(dtype, f"{self.where} (JAX primitive '{self.primitive}')")

    def const(self, data: object, dtype: DType | None = None) -> Value:
        """A constant; float64 data becomes f32 (as JAX without x64), small ones are shared."""
        array = np.asarray(data)
        if dtype is None:
            dtype = DType.f32 if array.dtype == np.float64 else dtype_from_numpy(array.dtype)
        value = super().const(np.array(array), dtype)  # a copy: never alias (or freeze) the caller's array
        if value.size > SHARED_CONST_SIZE:
            return value
        key = (dtype, value.shape, value.data.tobytes())
        if key not in self._small_consts:  # literals repeat a lot (0.0, 1.0, eps): one shared, read-only Value
            value.data.flags.writeable = False
            self._small_consts[key] = value
        return self._small_consts[key]

    def scalar(self, x: Value, what: str) -> object:
        """The Python value of a constant scalar; attributes such as a pad value must be one."""
        if not x.is_const or x.size != 1:
            raise self.fail(f"{what} must be a compile-time constant scalar")
        return x.data.reshape(()).item()
