"""The fused ops the passes make and codegen emits: their names and the epilogue a matmul/conv carries.

fused_elementwise (passes/fuse.py): an elementwise chain as one loop; attrs["nodes"] the original
nodes in order, attrs["loads"] ((value id, input slot, strides over the output), ...).
row_kernel (passes/rows.py): a per-row region (softmax, layernorm) as one node; attrs rows, n,
nodes and loads ((value id, input slot, row strides, column stride), ...).
An epilogue (passes/epilogue.py) is no op of its own: a matmul/conv node keeps its op and gets
attrs["epilogue"], an Epilogue.
"""

from __future__ import annotations

from dataclasses import dataclass

from cerebro.compiler.ir.graph import Node

FUSED = "fused_elementwise"
ROW_KERNEL = "row_kernel"
ROW_REDUCTIONS = frozenset({"reduce_sum", "reduce_max", "reduce_min"})  # the reductions a row kernel runs


@dataclass(frozen=True)
class Epilogue:
    """The chain applied per output element of a tile.

    source: id of the matmul/conv result the body reads (from the output buffer, just stored);
    nodes: elementwise nodes in order, the last one makes the output;
    loads: (value id, input index of the fused node, row_stride, col_stride) for every other value read.
    """

    source: int
    nodes: tuple[Node, ...]
    loads: tuple[tuple[int, int, int, int], ...]
