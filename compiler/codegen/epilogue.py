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
long chains overlap. A long chain (outlines: hardswish, SiLU) is not copied into every tile phase: the conv
tile calls rows_function, one per distinct chain and width in the module.
"""

from __future__ import annotations

import hashlib

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
        if len(group) == 1:  # one row's vector: stored as it is
            store(builder, result, pout, group[0][1], elem)
            continue
        for r, (_, at) in enumerate(group):
            mask = ir.Constant(ir.VectorType(ir.IntType(32), width), list(range(r * width, (r + 1) * width)))
            store(builder, builder.shuffle_vector(result, ir.Constant(result.type, None), mask), pout, at, elem)



CHEAP_OPS = frozenset({"add", "sub", "mul", "neg", "max", "min"})
OUTLINED_CHAIN = 3  # a chain of this many cheap ops or more, or with any other op, is outlined


def outlines(node: Node) -> bool:
    """Whether a conv tile runs node's epilogue through rows_function instead of inline: a long chain
    (hardswish's six ops, SiLU's logistic) costs more to emit and optimise per tile phase than the call
    costs at run time; bias, ReLU and residual chains (two ops) stay inline, where the call was measured
    at 1.09-1.33x the time of MobileNetV3's 1x1 convs with 16-24 input channels (short tiles)."""
    nodes = node.attrs["epilogue"].nodes
    return len(nodes) >= OUTLINED_CHAIN or any(inner.op not in CHEAP_OPS for inner in nodes)


class _Arguments:
    """Stands for a node function in apply_row/apply_rows_vector: its `args` by the node's slots, only the
    output's and those the epilogue loads filled in (the rows function's own arguments)."""

    def __init__(self, args: list[ir.Value | None]) -> None:
        self.args = args


def _chain_key(node: Node, width: int) -> str:
    """What the code of node's epilogue on rows of `width` columns depends on (its values numbered in order
    met, one-element inputs by their bits, which may become literals), as a name: equal chains share one
    rows_function across node functions."""
    epilogue: Epilogue = node.attrs["epilogue"]
    ordinals: dict[int, int] = {}

    def number(vid: int) -> int:
        return ordinals.setdefault(vid, len(ordinals))

    chain = (width, node.outputs[0].dtype.name, number(epilogue.source),
             tuple((vid_number, arg, row_stride, col_stride, node.inputs[arg].dtype.name,
                    node.inputs[arg].data.tobytes() if node.inputs[arg].is_const and node.inputs[arg].size == 1
                    else None) for vid, arg, row_stride, col_stride in epilogue.loads
                   for vid_number in [number(vid)]),
             tuple((inner.op, tuple(number(v.id) for v in inner.inputs), number(inner.outputs[0].id),
                    tuple(v.dtype.name for v in (*inner.inputs, *inner.outputs)),
                    tuple((name, _attr_key(value, node)) for name, value in sorted(inner.attrs.items())))
                   for inner in epilogue.nodes))
    return f"epilogue.{width}.{hashlib.sha256(repr(chain).encode()).hexdigest()[:16]}"


def _attr_key(value: object, node: Node) -> object:
    """An inner node's attr in _chain_key: plain values as they are; anything else (whose repr might not
    tell two apart, a large array's elides) keys this node alone, so its chain is shared with no other."""
    if isinstance(value, (bool, int, float, str, DType, type(None))):
        return value.name if isinstance(value, DType) else value
    if isinstance(value, tuple):
        return tuple(_attr_key(item, node) for item in value)
    return ("node", id(node))


def _loaded_slots(node: Node) -> list[int]:
    """The node's input slots the epilogue reads through a pointer, in order, then the output's."""
    epilogue: Epilogue = node.attrs["epilogue"]
    return [*sorted({arg for _, arg, _, _ in epilogue.loads}), len(node.inputs)]


def rows_function(node: Node, fn: ir.Function, width: int) -> ir.Function:
    """node's epilogue on a tile's rows of `width` columns as a function of its own: the output's and the
    loaded inputs' pointers (_loaded_slots), then (first row, where it starts in out, row pitch, first
    column, rows), the rows consecutive. One per distinct chain and width in the module (_chain_key),
    instead of a copy in every tile phase of every node function: MobileNetV3's hardswish convs spent
    a third of their IR and LLVM time on those. Kept out of line, so LLVM optimises it once; the same
    ops per element, so the same bits."""
    name = _chain_key(node, width)
    made = fn.module.globals.get(name)
    if made is not None:
        return made
    i64 = ir.IntType(64)
    slots = _loaded_slots(node)
    made = ir.Function(fn.module, ir.FunctionType(ir.VoidType(), [fn.args[s].type for s in slots] + [i64] * 5), name)
    made.linkage = "internal"
    made.attributes.add("noinline")
    arguments: list[ir.Value | None] = [None] * (len(node.inputs) + 1)
    for slot, arg in zip(slots, made.args):
        arg.add_attribute("noalias")
        arguments[slot] = arg
    shim = _Arguments(arguments)
    builder = ir.IRBuilder(made.append_basic_block("entry"))
    row, at, pitch, col, rows = made.args[-5:]
    joined = WIDE_ROWS if vectorises(node) and widens(node) else 1

    def group(first: ir.Value, count: int) -> None:
        group = [(index(builder, r, (row, 1), (first, 1)),
                  index(builder, 0, (at, 1), (builder.mul(index(builder, r, (first, 1)), pitch), 1)))
                 for r in range(count)]
        if vectorises(node):
            apply_rows_vector(builder, node, shim, group, col, width)
        else:
            apply_row(builder, node, shim, *group[0], col, width)

    with for_range(builder, builder.udiv(rows, ir.Constant(i64, joined)), "r") as r:
        group(builder.mul(r, ir.Constant(i64, joined)), joined)
    if joined > 1:  # the odd row left
        last = builder.urem(rows, ir.Constant(i64, joined))
        with builder.if_then(builder.icmp_unsigned("!=", last, ir.Constant(i64, 0))):
            group(builder.sub(rows, ir.Constant(i64, 1)), 1)
    builder.ret_void()
    return made


def call_rows(builder: ir.IRBuilder, node: Node, fn: ir.Function, row: ir.Value, at: ir.Value, pitch: ir.Value,
              col: ir.Value, width: int, rows: int) -> None:
    """rows_function's epilogue on `rows` consecutive rows from `row` (at `at` in out, `pitch` apart)."""
    i64 = ir.IntType(64)
    builder.call(rows_function(node, fn, width),
                 [*(fn.args[s] for s in _loaded_slots(node)), row, at, pitch, col, ir.Constant(i64, rows)])
