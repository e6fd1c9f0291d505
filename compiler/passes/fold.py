"""Constant folding: a transpose/convert of a weight, or batch norm's scale from its variance, is
computed once, at compile time; then batch norm after a conv goes into the conv's weights and one bias
add (passes/conv_scale.py), a constant scale after a matmul into its weights (passes/matmul_scale.py),
and any other chain of constant scales and offsets becomes one multiply and one add (passes/affine.py).

Folding runs the op's reference implementation (its declaration in compiler/ir/ops.py, through
interpret.run_node), so a folded constant means exactly what the op means everywhere else (integer
division by zero, saturating converts, NaN in max/min, ...). Ops declared `folds` (elementwise and
layout ops) fold, and only when the result is not much larger than its inputs (a broadcast of a
scalar to a big shape stays a cheap kernel instead of bloating the weights). Then pow by a constant
2 or 3 becomes multiplies (passes/pow_const.py): what a constant exponent lets the compiler know; and a
matmul cut into column slices (GPT-2's q, k, v) becomes one matmul per slice (passes/split_columns.py).
"""

from __future__ import annotations

import numpy as np

from cerebro.compiler.ir import Graph
from cerebro.compiler.ir.interpret import run_node
from cerebro.compiler.ir.ops import OPS
from cerebro.compiler.passes.affine import fold_affine_chains
from cerebro.compiler.passes.conv_scale import fold_conv_scales
from cerebro.compiler.passes.matmul_scale import fold_matmul_scales
from cerebro.compiler.passes.pow_const import multiply_constant_powers
from cerebro.compiler.passes.split_columns import split_sliced_matmuls

_SMALL = 64 * 1024  # results up to this many bytes fold even if they grow


def fold_constants(graph: Graph) -> Graph:
    """Replace foldable nodes whose inputs are all constants by constants (in place); returns graph."""
    kept = []
    for node in graph.nodes:
        declaration = OPS.get(node.op)
        if declaration is None or not declaration.folds:
            kept.append(node)
            continue
        (out,) = node.outputs
        if (not all(v.is_const for v in node.inputs)
                or out.nbytes > max(sum(v.nbytes for v in node.inputs), _SMALL)):
            kept.append(node)
            continue
        with np.errstate(all="ignore"):
            (result,) = run_node(node, [v.data for v in node.inputs])
        out.data = np.ascontiguousarray(result)
        out.producer = None
    graph.nodes = kept
    graph = fold_matmul_scales(fold_conv_scales(multiply_constant_powers(graph)))
    return split_sliced_matmuls(fold_affine_chains(graph))
