"""Apply a fused epilogue (passes/epilogue.py) to one tile row right after the kernel stored it.

The row was just written, so it is in L1: the chain costs one cached load and store per
element instead of a pass over the whole output. The loop has a constant trip count and
scalar rules from elementwise.py, which LLVM's loop vectoriser turns into full-width vector
code, transcendentals included (mathfn is branch-free); tests/test_codegen_mathfn.py checks
that on AVX2, AVX-512 and NEON for a GELU epilogue. A float constant of one element (relu's 0,
hardswish's 1/6, 0.5, 0 and 1) is a literal in the code, not a load: LLVM then knows it is no NaN
and not -0, so max/min lose their NaN and signed-zero selects and the accumulators do not spill
around the loop (a 1x1 conv with hardswish: 1.28x faster, relu 1.08x); elementwise.literal, as in the
elementwise loops. A conv tile's f32 chain of adds, multiplies, max/min and logistic (bias, ReLU, hardswish,
SiLU) is emitted as vector code instead (apply_rows_vector), SiLU's on vectors of two rows so that the rows'
long chains overlap.
"""

from __future__ import annotations

from llvmlite import ir

from cerebro.compiler.codegen.elementwise import literal, scalar_rule
from cerebro.compiler.codegen.llvm_types import index, load, load_value, splat, store, store_value
from cerebro.compiler.codegen.loops import for_range
from cerebro.compiler.ir import Node
from cerebro.compiler.ir.dtypes import DType
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
    product, start = source or (pout, at)
    with for_range(builder, width, "ep") as j:
        offset = index(builder, 0, (at, 1), (j, 1))
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


def _joined(builder: ir.IRBuilder, parts: list[ir.Value]) -> ir.Value:
    """One vector of equal-width parts (a power of two of them), in order."""
    while len(parts) > 1:
        size = parts[0].type.count
        mask = ir.Constant(ir.VectorType(ir.IntType(32), 2 * size), list(range(2 * size)))
        parts = [builder.shuffle_vector(a, b, mask) for a, b in zip(parts[::2], parts[1::2])]
    return parts[0]


VECTOR_OPS = frozenset({"add", "sub", "mul", "neg", "logistic", "max", "min"})  # rules that take vectors as they are
WIDE_OPS = frozenset({"add", "sub", "mul", "neg", "logistic"})  # chains worth joining rows for (SiLU's)
WIDE_ROWS = 2  # rows per wide vector: each op becomes WIDE_ROWS * width / lanes adjacent instructions


def _chain_of(node: Node, ops: frozenset[str]) -> bool:
    """Whether node's epilogue is an f32 chain of `ops` whose operands run along the columns or are one per row."""
    epilogue: Epilogue = node.attrs["epilogue"]
    return not (node.outputs[0].dtype is not DType.f32
                or any(inner.op not in ops or inner.outputs[0].dtype is not DType.f32 for inner in epilogue.nodes)
                or any(node.inputs[arg].dtype is not DType.f32 or col_stride not in (0, 1)
                       for _, arg, _, col_stride in epilogue.loads))


def widens(node: Node) -> bool:
    """Whether apply_rows_vector takes node's epilogue on WIDE_ROWS rows at a time (a chain of WIDE_OPS)."""
    return vectorises(node) and _chain_of(node, WIDE_OPS)


def vectorises(node: Node) -> bool:
    """Whether apply_rows_vector takes node's epilogue at all (a chain of VECTOR_OPS: ReLU, ReLU6,
    hardswish too), one row at a time where it does not widen."""
    return _chain_of(node, VECTOR_OPS)


def apply_rows_vector(builder: ir.IRBuilder, node: Node, fn: ir.Function, rows: list[tuple[ir.Value, ir.Value]],
                      col: ir.Value, width: int) -> None:
    """apply_row on every (row, at) of a tile as vector code, not a loop for LLVM's vectoriser (no loop, no
    run-time alias checks, no scalar remainder: less to optimise and the same ops per element, so the same
    bits). A chain that widens() runs on vectors of WIDE_ROWS rows: LLVM splits each op into one instruction
    per register, adjacent, so the rows' dependency chains (a SiLU's exp and division: ~60 cycles)
    interleave instead of waiting on each other. For a node that vectorises()."""
    epilogue: Epilogue = node.attrs["epilogue"]
    out = node.outputs[0]
    elem = ir.FloatType()
    pout = fn.args[len(node.inputs)]
    rules = [scalar_rule(inner) for inner in epilogue.nodes]
    literals = {vid: constant for vid, arg, _, _ in epilogue.loads
                if (constant := literal(node.inputs[arg])) is not None}
    joined = WIDE_ROWS if widens(node) else 1
    first = 0
    while first < len(rows):
        count = 1 << (min(joined, len(rows) - first).bit_length() - 1)  # a power of two: halves concatenate
        group, first = rows[first:first + count], first + count
        lanes = width * len(group)
        values = {epilogue.source: _joined(builder, [load(builder, pout, at, elem, width) for _, at in group])}
        for vid, arg, row_stride, col_stride in epilogue.loads:
            if vid in literals:
                values[vid] = splat(builder, literals[vid], lanes)
                continue
            parts = []
            for row, _ in group:
                at = index(builder, 0, (row, row_stride), (col, col_stride))
                parts.append(load(builder, fn.args[arg], at, elem, width) if col_stride else
                             splat(builder, load(builder, fn.args[arg], at, elem), width))
            values[vid] = _joined(builder, parts)
        for inner, rule in zip(epilogue.nodes, rules):
            values[inner.outputs[0].id] = rule(builder, *(values[v.id] for v in inner.inputs))
        result = values[out.id]
        for r, (_, at) in enumerate(group):
            mask = ir.Constant(ir.VectorType(ir.IntType(32), width), list(range(r * width, (r + 1) * width)))
            store(builder, builder.shuffle_vector(result, ir.Constant(result.type, None), mask), pout, at, elem)
