"""How a frontend adds IR: one builder for the JAX and ONNX frontends alike.

A Builder appends nodes to a graph, tagged with the source location of what is being lowered
(`loc`), their outputs inferred by the op's declaration. A node whose inputs are all constants
is folded on the spot by the op's reference implementation, so attributes computed from constants
(pad values, shapes, slice starts) stay readable and weights stay pre-transposed; huge inputs, and
results much bigger than their inputs, are left to passes/fold.py (a broadcast of a scalar to a big
shape stays a broadcast instead of becoming weights).
"""

from __future__ import annotations

import numpy as np

from cerebro.compiler.ir.dtypes import DType, dtype_from_numpy
from cerebro.compiler.ir.graph import Graph, Value, make_node
from cerebro.compiler.ir.interpret import run_node

FOLD_LIMIT = 1 << 24  # elements of input a fold may read
FOLD_GROWTH_LIMIT = 1 << 12  # elements a fold may produce beyond its inputs'


def constant(data: object, dtype: DType | None = None) -> Value:
    """A constant Value of data (as dtype, else its numpy dtype's); unlike Graph.const, 0-d stays 0-d."""
    array = np.asarray(data)
    dtype = dtype or dtype_from_numpy(array.dtype)
    array = np.array(array, dtype=dtype.numpy, order="C", copy=None)
    return Value(tuple(array.shape), dtype, data=array)


class Builder:
    """Adds nodes to `graph` at source location `loc`; the frontends' rule contexts are Builders."""

    graph: Graph
    loc: str

    def __init__(self, graph: Graph, loc: str = "") -> None:
        self.graph = graph
        self.loc = loc

    def const(self, data: object, dtype: DType | None = None) -> Value:
        return constant(data, dtype)

    def add(self, op: str, *inputs: Value, **attrs: object) -> Value:
        """Append one node (or its folded constant) and return its output."""
        folded = self._fold(op, inputs, attrs)
        return folded if folded is not None else self.graph.add1(op, *inputs, loc=self.loc, **attrs)

    def _fold(self, op: str, inputs: tuple[Value, ...], attrs: dict) -> Value | None:
        in_size = sum(v.size for v in inputs)
        if not inputs or not all(v.is_const for v in inputs) or in_size > FOLD_LIMIT:
            return None
        node = make_node(op, list(inputs), self.loc, **attrs)
        if node.outputs[0].size > max(in_size, FOLD_GROWTH_LIMIT):
            return None
        with np.errstate(all="ignore"):  # the reference computes IEEE results (inf, NaN) as the code does
            (data,) = run_node(node, [v.data for v in inputs])
        return self.const(data, node.outputs[0].dtype)

    def reshape(self, x: Value, shape: tuple[int, ...]) -> Value:
        shape = tuple(int(d) for d in shape)
        return x if x.shape == shape else self.add("reshape", x, shape=shape)

    def transpose(self, x: Value, perm: tuple[int, ...]) -> Value:
        perm = tuple(int(p) for p in perm)
        return x if perm == tuple(range(x.rank)) else self.add("transpose", x, perm=perm)

    def convert(self, x: Value, dtype: DType) -> Value:
        """x as dtype; f16/bf16 from or to anything but a float of 32 bits or less goes through f32."""
        if x.dtype is dtype:
            return x
        if (x.dtype.is_half or dtype.is_half) and not {x.dtype, dtype} <= {DType.f32, DType.f16, DType.bf16}:
            x = self.convert(x, DType.f32)
        return self.add("convert", x, dtype=dtype)

    def to_rank(self, x: Value, rank: int) -> Value:
        """Prepend unit dims so x broadcasts against a value of this rank (numpy aligns trailing dims)."""
        return self.reshape(x, (1,) * (rank - x.rank) + x.shape)

    def broadcast(self, x: Value, shape: tuple[int, ...]) -> Value:
        """x (unit dims where it differs) materialised at exactly shape."""
        shape = tuple(int(d) for d in shape)
        x = self.to_rank(x, len(shape))
        if x.shape == shape:
            return x
        return self.add("broadcast_in_dim", x, shape=shape, broadcast_dimensions=tuple(range(len(shape))))

    def elementwise(self, op: str, *inputs: Value, **attrs: object) -> Value:
        """An elementwise op on inputs of any ranks (the IR needs equal ranks; numpy broadcasting rules)."""
        rank = max(v.rank for v in inputs)
        return self.add(op, *(self.to_rank(v, rank) for v in inputs), **attrs)
