"""What a lowering rule sees: the graph being built, the current source location and small builders."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
from jax._src import source_info_util

from cerebro.compiler.ir import DType, Graph, Node, Value, dtype_from_numpy, infer
from cerebro.compiler.ir.interpret import run_node

# Folding a node whose inputs are all constants keeps weights pre-transposed and
# attributes (pad values, slice starts) readable. It is left to the passes when the
# inputs are huge or when the result would be much bigger than them (a broadcast
# of a scalar to a large zeros tensor should stay a broadcast, not become weights).
FOLD_LIMIT = 1 << 24
FOLD_GROWTH_LIMIT = 1 << 12
SHARED_CONST_SIZE = 16


class UnsupportedPrimitive(NotImplementedError):
    """A JAX primitive (or a use of one) the frontend cannot express in the IR."""


def location(source_info: object) -> str:
    """'file.py:14 (in fn)' for the innermost frame of the user's own code (outside installed packages)."""
    traceback = getattr(source_info, "traceback", None)
    frames = list(source_info_util.user_frames(traceback)) if traceback is not None else []
    if not frames:
        return ""
    own = [f for f in frames if "site-packages" not in f.file_name and "dist-packages" not in f.file_name]
    frame = (own or frames)[0]
    return f"{os.path.basename(frame.file_name)}:{frame.start_line} (in {frame.function_name})"


def ir_dtype(dtype: object, where: str) -> DType:
    try:
        return dtype_from_numpy(dtype)
    except (TypeError, ValueError):
        raise UnsupportedPrimitive(f"unsupported element type {dtype} at {where or 'unknown location'}") from None


class Context:
    """Builds IR for one traced function; `loc` is the location of the equation being lowered."""

    def __init__(self, graph: Graph, lower: Callable[[Context, Any, list, list[Value]], list[Value]]) -> None:
        self.graph = graph
        self.loc = ""
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

    def fail(self, message: str) -> UnsupportedPrimitive:
        where = self.loc or "unknown location"
        return UnsupportedPrimitive(f"unsupported JAX primitive '{self.primitive}' at {where}: {message}")

    def dtype(self, dtype: object) -> DType:
        return ir_dtype(dtype, f"{self.loc or 'unknown location'} (JAX primitive '{self.primitive}')")

    def const(self, data: object, dtype: DType | None = None) -> Value:
        array = np.asarray(data)
        if dtype is None:
            dtype = DType.f32 if array.dtype == np.float64 else dtype_from_numpy(array.dtype)
        # Not Graph.const: np.ascontiguousarray turns a 0-d array into shape (1,).
        array = np.array(array, dtype=dtype.numpy, order="C")
        if array.size > SHARED_CONST_SIZE:
            return Value(tuple(array.shape), dtype, data=array)
        key = (dtype, array.shape, array.tobytes())
        if key not in self._small_consts:  # literals repeat a lot (0.0, 1.0, eps): one shared, read-only Value
            array.flags.writeable = False
            self._small_consts[key] = Value(tuple(array.shape), dtype, data=array)
        return self._small_consts[key]

    def add(self, op: str, *inputs: Value, **attrs: object) -> Value:
        """Append one IR node (or fold it into a constant when every input is one)."""
        in_size = sum(v.size for v in inputs)
        if inputs and all(v.is_const for v in inputs) and in_size <= FOLD_LIMIT:
            node = Node(op, list(inputs), [], dict(attrs), self.loc)
            node.outputs = [Value(tuple(s), d, producer=node) for s, d in infer(node)]
            if node.outputs[0].size <= max(in_size, FOLD_GROWTH_LIMIT):
                (data,) = run_node(node, [v.data for v in inputs])
                return self.const(data, node.outputs[0].dtype)
        return self.graph.add1(op, *inputs, loc=self.loc, **attrs)

    def reshape(self, x: Value, shape: tuple[int, ...]) -> Value:
        shape = tuple(int(d) for d in shape)
        return x if x.shape == shape else self.add("reshape", x, shape=shape)

    def transpose(self, x: Value, perm: tuple[int, ...]) -> Value:
        perm = tuple(int(p) for p in perm)
        return x if perm == tuple(range(x.rank)) else self.add("transpose", x, perm=perm)

    def convert(self, x: Value, dtype: DType) -> Value:
        return x if x.dtype is dtype else self.add("convert", x, dtype=dtype)

    def to_rank(self, x: Value, rank: int) -> Value:
        """Prepend unit dims so x broadcasts elementwise against a value of this rank."""
        return self.reshape(x, (1,) * (rank - x.rank) + x.shape)

    def broadcast(self, x: Value, shape: tuple[int, ...]) -> Value:
        """x (of equal rank, unit dims where it differs) materialised at shape."""
        if x.shape == tuple(shape):
            return x
        x = self.to_rank(x, len(shape))
        return self.add("broadcast_in_dim", x, shape=tuple(shape), broadcast_dimensions=tuple(range(len(shape))))

    def elementwise(self, op: str, *inputs: Value, **attrs: object) -> Value:
        rank = max(v.rank for v in inputs)
        return self.add(op, *(self.to_rank(v, rank) for v in inputs), **attrs)

    def scalar(self, x: Value, what: str) -> object:
        """The Python value of a constant scalar; attributes such as a pad value must be one."""
        if not x.is_const or x.size != 1:
            raise self.fail(f"{what} must be a compile-time constant scalar")
        return x.data.reshape(()).item()
