"""How a matmul node walks its operands: the logical product and one stride per logical dim."""

from __future__ import annotations

import math
from dataclasses import dataclass

from cerebro.compiler.ir.graph import Node
from cerebro.compiler.ir.strides import contiguous_strides


@dataclass(frozen=True)
class MatmulView:
    """Logical matmul a[*batch, rows, depth] @ b[*batch, depth, columns] -> c[*batch, rows, columns],
    each operand at element offset sum(index * stride) of its buffer (strides: one per logical dim)."""

    batch: tuple[int, ...]
    rows: int
    depth: int
    columns: int
    a: tuple[int, ...]
    b: tuple[int, ...]
    c: tuple[int, ...]

    @property
    def all_rows(self) -> int:
        """Rows of a over all batches (what targets.matmul_tile picks a register tile by)."""
        return math.prod(self.batch) * self.rows


def matmul_view(node: Node) -> MatmulView:
    """node's view (attrs["view"], set by passes/transpose.py), or the contiguous one its input/output
    shapes imply."""
    view = node.attrs.get("view")
    if view is not None:
        return view
    a, b = node.inputs[:2]
    *batch, rows, depth = a.shape
    columns = b.shape[-1]
    logical_c = (*batch, rows, columns)  # the output may be stored reshaped (an epilogue's [.., heads, dim])
    return MatmulView(tuple(batch), rows, depth, columns, tuple(contiguous_strides(a.shape)),
                      tuple(contiguous_strides(b.shape)), tuple(contiguous_strides(logical_c)))
