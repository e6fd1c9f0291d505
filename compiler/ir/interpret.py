"""The reference interpreter: runs a graph with each op's reference implementation (ops.OPS,
compiler/ir/reference.py), which defines what the IR means.

It is the oracle frontends are checked against before any code is generated. It runs the passes'
output too (fused ops, and matmul/conv with lowered attributes: fused_reference.py).
"""

from __future__ import annotations

import numpy as np

from cerebro.compiler.ir.dtypes import dtype_from_numpy
from cerebro.compiler.ir.fused import FUSED_OPS
from cerebro.compiler.ir.fused_reference import lowered_host
from cerebro.compiler.ir.graph import Graph, IRError, Node
from cerebro.compiler.ir.ops import OPS


def run_node(node: Node, args: list[np.ndarray]) -> list[np.ndarray]:
    """Evaluate one node on numpy arrays; results have exactly the shapes and dtypes its rule gives."""
    declaration = OPS.get(node.op) or FUSED_OPS.get(node.op)
    if declaration is None:
        raise IRError(f"{node.where()}: the interpreter has no implementation")
    lowered = node.op in OPS and any(a in node.attrs for a in OPS[node.op].lowered)
    result = (lowered_host if lowered else declaration.reference)(node, *args)
    results = result if len(node.outputs) != 1 else [result]  # a multi-output op (loop) returns a list
    return [np.array(np.asarray(r), dtype=expected.dtype.numpy, order="C").reshape(expected.shape)
            for r, expected in zip(results, node.outputs, strict=True)]


def _check_input(graph: Graph, index: int, array: object) -> np.ndarray:
    value = graph.inputs[index]
    array = np.asarray(array)
    if tuple(array.shape) != value.shape:
        raise ValueError(f"input {index} ({value.name!r}) has shape {array.shape}, expected {value.shape}")
    try:
        dtype = dtype_from_numpy(array.dtype)
    except ValueError:
        dtype = None
    if dtype is not value.dtype:
        raise ValueError(f"input {index} ({value.name!r}) has dtype {array.dtype}, expected {value.dtype.name}")
    return array


def run_graph(graph: Graph, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Run graph on numpy inputs (shapes and dtypes must match exactly) and return its outputs."""
    if len(inputs) != len(graph.inputs):
        raise ValueError(f"graph {graph.name!r} takes {len(graph.inputs)} inputs, got {len(inputs)}")
    env: dict[int, np.ndarray] = {}
    for i, array in enumerate(inputs):
        env[graph.inputs[i].id] = _check_input(graph, i, array)

    def read(value):
        return value.data if value.is_const else env[value.id]

    for node in graph.nodes:
        for value, result in zip(node.outputs, run_node(node, [read(v) for v in node.inputs])):
            env[value.id] = result
    return [np.array(read(v)) for v in graph.outputs]
