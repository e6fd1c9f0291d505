"""Apply a fused epilogue (passes/epilogue.py) to one tile row right after the kernel stored it.

The row was just written, so it is in L1: the chain costs one cached load and store per
element instead of a pass over the whole output. The loop has a constant trip count and
scalar rules from elementwise.py, which LLVM's loop vectoriser turns into full-width vector
code, transcendentals included (mathfn is branch-free); tests/test_codegen_mathfn.py checks
that on AVX2, AVX-512 and NEON for a GELU epilogue. A float constant of one element (relu's 0,
hardswish's 1/6, 0.5, 0 and 1) is a literal in the code, not a load: LLVM then knows it is no NaN
and not -0, so max/min lose their NaN and signed-zero selects and the accumulators do not spill
around the loop (a 1x1 conv with hardswish: 1.28x faster, relu 1.08x); elementwise.literal, as in the
elementwise loops.
"""

from __future__ import annotations

from llvmlite import ir

from cerebro.compiler.codegen.elementwise import literal, scalar_rule
from cerebro.compiler.codegen.llvm_types import index, load_value, store_value
from cerebro.compiler.codegen.loops import for_range
from cerebro.compiler.ir import Node
from cerebro.compiler.ir.fused import Epilogue


def apply_row(builder: ir.IRBuilder, node: Node, fn: ir.Function, row: ir.Value, at: ir.Value, col: ir.Value,
              width: int, source: tuple[ir.Value, ir.Value] | None = None) -> None:
    """out[at : at+width] = epilogue(out[at : at+width]) for output row `row` (leading dims flattened)
    and columns col : col+width. source: (buffer, offset) the product row is read from instead of out (an
    integer product's i32 row, whose output may be narrower)."""
    epilogue: Epilogue = node.attrs["epilogue"]
    out = node.outputs[0]
    pout = fn.args[len(node.inputs)]
    dtypes = {v.id: v.dtype for inner in epilogue.nodes for v in inner.inputs}
    rules = [scalar_rule(inner) for inner in epilogue.nodes]
    literals = {vid: constant for vid, arg, _, _ in epilogue.loads
                if node.inputs[arg].dtype == dtypes[vid] and (constant := literal(node.inputs[arg])) is not None}
    bases = [index(builder, 0, (row, row_stride), (col, col_stride)) for _, _, row_stride, col_stride in
             epilogue.loads]
    with for_range(builder, width, "ep") as j:
        offset = index(builder, 0, (at, 1), (j, 1))
        product, start = source or (pout, at)
        values = {epilogue.source: load_value(builder, product, index(builder, 0, (start, 1), (j, 1)),
                                              dtypes[epilogue.source])}
        for (vid, arg, _, col_stride), base in zip(epilogue.loads, bases):
            if vid in literals:
                values[vid] = literals[vid]
            else:
                at_vid = index(builder, 0, (base, 1), (j, col_stride))
                values[vid] = load_value(builder, fn.args[arg], at_vid, dtypes[vid])
        for inner, rule in zip(epilogue.nodes, rules):
            values[inner.outputs[0].id] = rule(builder, *(values[v.id] for v in inner.inputs))
        store_value(builder, values[out.id], pout, offset, out.dtype)
