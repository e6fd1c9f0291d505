"""The tensor IR every frontend produces and every backend consumes."""

from cerebro.compiler.ir.dtypes import DType, dtype_from_numpy
from cerebro.compiler.ir.graph import Graph, IRError, Node, Value, make_node
from cerebro.compiler.ir.ops import OPS, infer
from cerebro.compiler.ir.printer import format_graph
from cerebro.compiler.ir.verify import verify

__all__ = [
    "DType",
    "Graph",
    "IRError",
    "Node",
    "OPS",
    "Value",
    "dtype_from_numpy",
    "format_graph",
    "infer",
    "make_node",
    "verify",
]
