"""Graph, Node and Value: a static-shape dataflow graph kept in topological order."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from cerebro.compiler.ir.dtypes import DType, dtype_from_numpy

_ids = itertools.count()


class IRError(Exception):
    """An invalid graph, op or attribute; the message names the op and its source location."""


@dataclass(eq=False)
class Value:
    """A tensor: the output of one node, a graph input, or a constant (data is set)."""

    shape: tuple[int, ...]
    dtype: DType
    name: str = ""
    producer: Node | None = None
    data: np.ndarray | None = None
    id: int = field(default_factory=lambda: next(_ids))

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(math.prod(self.shape))  # not np.prod: 5x slower on a short tuple, asked ~3 times a node

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def is_const(self) -> bool:
        return self.data is not None

    def __repr__(self) -> str:
        dims = "x".join(map(str, self.shape)) or "scalar"
        return f"%{self.name or self.id}:{self.dtype.name}[{dims}]"


@dataclass(eq=False)
class Node:
    """One operation. attrs hold only plain Python values (ints, floats, strs, tuples, DType)."""

    op: str
    inputs: list[Value]
    outputs: list[Value]
    attrs: dict
    loc: str = ""

    def where(self) -> str:
        return f"'{self.op}'" + (f" at {self.loc}" if self.loc else "")


def make_node(op: str, inputs: list[Value], loc: str = "", out: Value | None = None, **attrs: object) -> Node:
    """A node outside any graph (passes splice such nodes into a graph's list), its outputs inferred
    by the op's rule in ops.OPS; out, if given, becomes its one output and must match the rule."""
    from cerebro.compiler.ir.ops import infer

    node = Node(op, list(inputs), [], dict(attrs), loc)
    made = infer(node)
    if out is not None:
        ((shape, dtype),) = made
        if (out.shape, out.dtype) != (tuple(shape), dtype):
            raise IRError(f"{node.where()} makes {dtype.name}{tuple(shape)}, not {out}")
        out.producer = node
        node.outputs.append(out)
        return node
    for shape, dtype in made:
        node.outputs.append(Value(tuple(shape), dtype, producer=node))
    return node


class Graph:
    """A function from named inputs to named outputs, nodes in topological order."""

    def __init__(self, name: str = "model") -> None:
        self.name = name
        self.inputs: list[Value] = []
        self.outputs: list[Value] = []
        self.nodes: list[Node] = []
        self.output_names: list[str] = []

    def add_input(self, shape: tuple[int, ...], dtype: DType, name: str) -> Value:
        value = Value(tuple(int(d) for d in shape), dtype, name)
        self.inputs.append(value)
        return value

    def const(self, data: object, dtype: DType | None = None, name: str = "") -> Value:
        """A constant tensor; it is stored in the model's weights, never in the code."""
        array = np.asarray(data)
        if dtype is not None:
            array = array.astype(dtype.numpy)
        elif array.dtype == np.float64:
            array = array.astype(np.float32)
        array = np.array(array, order="C")  # ascontiguousarray would make 0-d arrays 1-d
        return Value(tuple(array.shape), dtype_from_numpy(array.dtype), name, data=array)

    def add(self, op: str, inputs: list[Value], loc: str = "", **attrs: object) -> list[Value]:
        """Append a node; output shapes and dtypes come from the op's rule in ops.OPS."""
        node = make_node(op, inputs, loc, **attrs)
        self.nodes.append(node)
        return node.outputs

    def add1(self, op: str, *inputs: Value, loc: str = "", **attrs: object) -> Value:
        (out,) = self.add(op, list(inputs), loc, **attrs)
        return out

    def set_outputs(self, outputs: list[Value], names: list[str] | None = None) -> None:
        self.outputs = list(outputs)
        self.output_names = names or [f"output_{i}" for i in range(len(outputs))]

    @property
    def input_names(self) -> list[str]:
        return [v.name for v in self.inputs]

    def constants(self) -> list[Value]:
        """Every distinct constant the nodes or outputs use, in first-use order."""
        seen: dict[int, Value] = {}
        for node in self.nodes:
            for value in node.inputs:
                if value.is_const:
                    seen.setdefault(value.id, value)
        for value in self.outputs:
            if value.is_const:
                seen.setdefault(value.id, value)
        return list(seen.values())

    def users(self) -> dict[int, list[Node]]:
        """The nodes reading each value (by value id), in graph order; a node reading it twice is listed twice."""
        table: dict[int, list[Node]] = {}
        for node in self.nodes:
            for value in node.inputs:
                table.setdefault(value.id, []).append(node)
        return table

    def reader_counts(self) -> dict[int, int]:
        """How many nodes read each value (by value id); a node reading it twice counts once."""
        return {vid: len({id(node) for node in nodes}) for vid, nodes in self.users().items()}
