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
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace

from llvmlite import ir

from cerebro.compiler.codegen.elementwise import literal, scalar_rule
from cerebro.compiler.codegen.kernel_key import kernel_key
from cerebro.compiler.codegen.llvm_types import index, load, load_value, opaque, splat, store, store_value
from cerebro.compiler.codegen.loops import for_range
from cerebro.compiler.ir import Node, Value
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
                      col: ir.Value, width: int, source: tuple[ir.Value, list[ir.Value]] | None = None,
                      products: list[ir.Value] | None = None) -> None:
    """apply_row on every (row, at) of a tile as vector code, not a loop for LLVM's vectoriser (no loop, no
    run-time alias checks, no scalar remainder: less to optimise and the same ops per element, so the same
    bits). A chain that widens() runs on vectors of WIDE_ROWS rows: LLVM splits each op into one instruction
    per register, adjacent, so the rows' dependency chains (a SiLU's exp and division: ~60 cycles)
    interleave instead of waiting on each other. For a node that vectorises(). source: (buffer, an offset per
    row) the product rows are read from instead of out (a concatenation's input); products: the rows'
    product vectors themselves (a conv tile's accumulators), never stored and loaded back."""
    epilogue: Epilogue = node.attrs["epilogue"]
    out = node.outputs[0]
    elem = ir.FloatType()
    pout = fn.args[len(node.inputs)]
    rules = [scalar_rule(inner) for inner in epilogue.nodes]
    literals = {vid: constant for vid, arg, _, _ in epilogue.loads
                if (constant := literal(node.inputs[arg])) is not None}
    joined = WIDE_ROWS if widens(node) else 1
    product, starts = source or (pout, [at for _, at in rows])
    first = 0
    while first < len(rows):
        count = 1 << (min(joined, len(rows) - first).bit_length() - 1)  # a power of two: halves concatenate
        group, first = rows[first:first + count], first + count
        lanes = width * len(group)
        values = {epilogue.source: _joined(builder, products[first - count:first] if products is not None else
                                           [load(builder, product, at, elem, width)
                                            for at in starts[first - count:first]])}
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

    def __init__(self, args: list[ir.Value | None], module: ir.Module | None = None) -> None:
        self.args = args
        self.module = module


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


def rows_function(node: Node, fn: ir.Function, width: int, copied: bool = False) -> ir.Function:
    """node's epilogue on a tile's rows of `width` columns as a function of its own: the output's and the
    loaded inputs' pointers (_loaded_slots), then (first row, where it starts in out, row pitch, first
    column, rows), the rows consecutive. One per distinct chain and width in the module (_chain_key),
    instead of a copy in every tile phase of every node function: MobileNetV3's hardswish convs spent
    a third of their IR and LLVM time on those. Kept out of line, so LLVM optimises it once; the same
    ops per element, so the same bits. copied: the product rows are read from a pointer before the others,
    rows a pitch (the last argument) apart, and written to out (a concatenation's input, call_rows_from)."""
    name = _chain_key(node, width) + (".copied" if copied else "")
    made = fn.module.globals.get(name)
    if made is not None:
        return made
    i64 = ir.IntType(64)
    slots = _loaded_slots(node)
    pointers = [ir.PointerType()] * copied + [fn.args[s].type for s in slots]
    made = ir.Function(fn.module, ir.FunctionType(ir.VoidType(), pointers + [i64] * (5 + copied)), name)
    made.linkage = "internal"
    made.attributes.add("noinline")
    arguments: list[ir.Value | None] = [None] * (len(node.inputs) + 1)
    for slot, arg in zip(slots, made.args[copied:]):
        arg.add_attribute("noalias")
        arguments[slot] = arg
    if copied:
        made.args[0].add_attribute("noalias")
    shim = _Arguments(arguments)
    builder = ir.IRBuilder(made.append_basic_block("entry"))
    row, at, pitch, col, rows = made.args[len(pointers):len(pointers) + 5]
    joined = WIDE_ROWS if vectorises(node) and widens(node) else 1

    def group(first: ir.Value, count: int) -> None:
        group = [(index(builder, r, (row, 1), (first, 1)),
                  index(builder, 0, (at, 1), (builder.mul(index(builder, r, (first, 1)), pitch), 1)))
                 for r in range(count)]
        source = (made.args[0], [builder.mul(index(builder, r, (first, 1)), made.args[-1]) for r in range(count)]
                  ) if copied else None
        if vectorises(node):
            apply_rows_vector(builder, node, shim, group, col, width, source)
        else:
            apply_row(builder, node, shim, *group[0], col, width, source and (source[0], source[1][0]))

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


def call_rows_from(builder: ir.IRBuilder, node: Node, fn: ir.Function, source: ir.Value, source_pitch: ir.Value,
                   row: ir.Value, at: ir.Value, pitch: ir.Value, col: ir.Value, width: int, rows: ir.Value) -> None:
    """rows_function's epilogue on `rows` rows of `width` elements read from source (`source_pitch` apart),
    written to out from `at` (`pitch` apart): output row `row` on, columns col on."""
    builder.call(rows_function(node, fn, width, copied=True),
                 [source, *(fn.args[s] for s in _loaded_slots(node)), row, at, pitch, col, rows, source_pitch])


# A node with a residual add and the same node without it (ResNet's last conv of a block and the first of
# the next) are one function, the core, that adds the residual where its pointer is not null: the core
# takes the residual form's buffers, with the residual last; each node's own function passes its buffers
# (null for a residual it lacks) and its trailing arguments on. The two tiles are the same code but for the
# epilogue, chosen per row by a branch outside the multiply-add loops: each form runs the ops it ran alone
# (same bits). The residual add goes after the chain's leading per-channel steps (bias, scale:
# RESIDUAL_AFTER ops with an operand of row stride 0), where ResNets add it; a residual node whose add is
# elsewhere keeps a function of its own (its key is not the core's).
RESIDUAL_AFTER = frozenset({"add", "sub", "mul"})


@dataclass(frozen=True)
class Residual:
    """A node's two forms: `core` has the residual input last (its epilogue loads it at row stride C, the
    output's channel count); `plain` is core without it (inputs core's but the last, the same output);
    `slots[i]` is the node's input slot for core's input i (None: the residual this node lacks); `key`
    is core's kernel key (the residual forms of equal keys share one core)."""

    core: Node
    plain: Node
    slots: tuple[int | None, ...]
    key: object


def _renamed(inner: Node, names: dict[int, Value]) -> Node:
    return Node(inner.op, [names.get(v.id, v) for v in inner.inputs], [names.get(v.id, v) for v in inner.outputs],
                inner.attrs, inner.loc)


def _with_epilogue(node: Node, inputs: list[Value], chain: Epilogue | None, attr: str) -> Node:
    attrs = {name: value for name, value in node.attrs.items() if name != attr}
    return Node(node.op, inputs, node.outputs, {**attrs, attr: chain} if chain else attrs, node.loc)


def _stripped(node: Node, min_slot: int, attr: str) -> tuple[Node, int] | None:
    """(node without its residual add, the residual's input slot), or None: no add of a value of the output's
    shape and dtype, read at the output's row stride from a slot >= min_slot that nothing else reads, to a
    chain value only it uses."""
    chain: Epilogue | None = node.attrs.get(attr)
    out = node.outputs[0]
    if chain is None:
        return None
    loads = {vid: (arg, row_stride, col_stride) for vid, arg, row_stride, col_stride in chain.loads}
    uses = Counter(v.id for inner in chain.nodes for v in inner.inputs)
    slots = Counter(arg for _, arg, _, _ in chain.loads)
    for inner in chain.nodes:
        if inner.op != "add" or inner.inputs[1].id not in loads:
            continue
        value, residual = inner.inputs
        arg, row_stride, col_stride = loads[residual.id]
        if (arg < min_slot or slots[arg] != 1 or (row_stride, col_stride) != (out.shape[-1], 1)
                or uses[residual.id] != 1 or uses[value.id] != 1 or node.inputs[arg].is_const
                or any(v.shape != out.shape or v.dtype != out.dtype for v in (residual, node.inputs[arg], value))):
            continue
        made = inner.outputs[0]
        names = {made.id: value} if made is not out else {value.id: out}
        nodes = tuple(_renamed(other, names) for other in chain.nodes if other is not inner)
        kept = tuple((vid, a - (a > arg), rs, cs) for vid, a, rs, cs in chain.loads if vid != residual.id)
        inputs = [v for slot, v in enumerate(node.inputs) if slot != arg]
        return _with_epilogue(node, inputs, Epilogue(chain.source, nodes, kept) if nodes else None, attr), arg
    return None


def _with_residual(plain: Node, attr: str) -> Node:
    """plain with a residual input last, added after its chain's leading per-channel steps."""
    chain: Epilogue | None = plain.attrs.get(attr)
    out = plain.outputs[0]
    nodes = list(chain.nodes) if chain else []
    row_strides = {vid: row_stride for vid, _, row_stride, _ in chain.loads} if chain else {}
    source = next((v for inner in nodes for v in inner.inputs if v.id == chain.source), None) if chain else None
    value = source or Value(out.shape, out.dtype, "product")
    at = 0
    while (at < len(nodes) and nodes[at].op in RESIDUAL_AFTER and len(nodes[at].inputs) == 2
           and nodes[at].inputs[0].id == value.id and row_strides.get(nodes[at].inputs[1].id) == 0):
        value, at = nodes[at].outputs[0], at + 1
    residual = Value(out.shape, out.dtype, "residual")
    if value is out:  # the add makes the output: the chain's last step makes a value of its own
        value = Value(out.shape, out.dtype, "before_residual")
        nodes[at - 1] = _renamed(nodes[at - 1], {out.id: value})
    made = out if at == len(nodes) else Value(out.shape, out.dtype, "with_residual")
    nodes[at:] = [Node("add", [value, residual], [made], {}), *(_renamed(n, {value.id: made}) for n in nodes[at:])]
    loads = tuple(sorted((*(chain.loads if chain else ()), (residual.id, len(plain.inputs), out.shape[-1], 1)),
                         key=lambda load: load[1]))  # by slot, as residual_forms orders a residual node's
    return _with_epilogue(plain, [*plain.inputs, residual], Epilogue(chain.source if chain else value.id,
                                                                     tuple(nodes), loads), attr)


def by_form(builder: ir.IRBuilder, chosen: list[tuple], emit: Callable[..., None]) -> None:
    """emit(*rest) for each (condition, *rest) of chosen where its condition holds (None: always). A
    residual-sharing core's two forms (share_residual: residual_present and its negation, which exclude each
    other) take one branch."""
    if len(chosen) == 2 and all(item[0] is not None for item in chosen):
        with builder.if_else(chosen[0][0]) as (then, otherwise):
            for (_, *rest), block in zip(chosen, (then, otherwise)):
                with block:
                    emit(*rest)
        return
    for when, *rest in chosen:
        if when is None:
            emit(*rest)
            continue
        with builder.if_then(when):
            emit(*rest)


def residual_forms(node: Node, target: object, min_slot: int, attr: str = "epilogue") -> Residual | None:
    """node's Residual, or None where it has a residual add that is not where the core adds it. min_slot:
    the first input slot a residual may be in (the operands' before it); attr: the node's chain (a
    Winograd conv's is "chain")."""
    stripped = _stripped(node, min_slot, attr)
    plain, slot = stripped or (node, None)
    core = _with_residual(plain, attr)
    key = kernel_key(core, target)
    if key is None:
        return None
    if slot is None:
        return Residual(core, _stripped(core, min_slot, attr)[0], (*range(len(node.inputs)), None), key)
    order = [*(s for s in range(len(node.inputs)) if s != slot), slot]
    at = {old: new for new, old in enumerate(order)}
    chain: Epilogue = node.attrs[attr]
    moved = _with_epilogue(node, [node.inputs[s] for s in order],
                           replace(chain, loads=tuple(sorted(((vid, at[a], rs, cs) for vid, a, rs, cs in chain.loads),
                                                             key=lambda load: load[1]))), attr)
    if kernel_key(moved, target) != key:
        return None
    return Residual(core, _stripped(core, min_slot, attr)[0], tuple(order), key)


class _Shared:
    """A module's residual forms met so far, by core key: the first node's function and form until the
    other form comes (then both call the core)."""

    def __init__(self) -> None:
        self.first: dict[object, tuple[ir.Function, Residual, bool]] = {}
        self.cores: dict[object, ir.Function] = {}


_SHARED: weakref.WeakKeyDictionary[ir.Module, _Shared] = weakref.WeakKeyDictionary()
EmitBody = Callable[[ir.Function, Node, Node | None, Residual | None], None]


def share_residual(node: Node, fn: ir.Function, forms: Residual | None, emit: EmitBody) -> None:
    """Fill fn, node's function. emit(fn, node, None, None) writes a node's own code; emit(core, forms.core,
    forms.plain, forms) the core's (residual_present and plain_arguments say which form runs). The first node
    of a core key gets its own code; when the other form of that key comes, the core is made and both
    functions become calls of it (the first one's code is dropped): a model with only one form of a conv
    pays for no residual code."""
    if forms is None:
        emit(fn, node, None, None)
        return
    shared = _SHARED.setdefault(fn.module, _Shared())
    key = (forms.key, tuple(str(a.type) for a in fn.args[len(node.inputs) + 1:]))
    core = shared.cores.get(key)
    if core is None:
        first = shared.first.get(key)
        residual = forms.slots[-1] is not None
        if first is None or first[2] == residual:
            shared.first.setdefault(key, (fn, forms, residual))
            emit(fn, node, None, None)
            return
        tail = [a.type for a in fn.args[len(node.inputs) + 1:]]
        pointers = [fn.args[0].type] * (len(forms.core.inputs) + 1)
        core = ir.Function(fn.module, ir.FunctionType(ir.VoidType(), pointers + tail), f"{fn.name}.core.{fn.name}")
        core.linkage = "internal"
        core.attributes.add("noinline")
        for arg in core.args:
            if isinstance(arg.type, ir.PointerType):
                arg.add_attribute("noalias")
        emit(core, forms.core, forms.plain, forms)
        shared.cores[key] = core
        first_fn, first_forms, _ = shared.first.pop(key)
        _drop_code(first_fn)
        _call_core(first_fn, first_forms, core)
    _call_core(fn, forms, core)


def _drop_code(fn: ir.Function) -> None:
    """Empty fn's blocks, their instructions' references (cycles) cleared as module._release does."""
    for block in fn.blocks:
        for instruction in block.instructions:
            instruction.__dict__.clear()
        block.__dict__.clear()
    fn.blocks = []


def _call_core(fn: ir.Function, forms: Residual, core: ir.Function) -> None:
    """fn's body: a call of core with fn's buffers in core's order (null for the residual it lacks) and
    fn's trailing arguments. The null goes through an empty inline asm (llvm_types.opaque): as a constant,
    LLVM's function specialisation made a second copy of the core for it (resnet18's LLVM optimise 0.75 ->
    0.87 CPU s instead of less)."""
    builder = ir.IRBuilder(fn.append_basic_block("core"))
    inputs = len(forms.slots) - (forms.slots[-1] is None)
    pointer = fn.args[0].type
    null = opaque(builder, ir.Constant(pointer, None))
    args = [null if slot is None else fn.args[slot] for slot in forms.slots]
    builder.call(core, [*args, *fn.args[inputs:]])
    builder.ret_void()


def residual_present(builder: ir.IRBuilder, core: ir.Function, forms: Residual) -> ir.Value:
    """In the core: whether its caller passed a residual (an i1)."""
    pointer = core.args[len(forms.core.inputs) - 1]
    return builder.icmp_unsigned("!=", pointer, ir.Constant(pointer.type, None))


def plain_arguments(core: ir.Function, forms: Residual) -> _Arguments:
    """The core's arguments as the plain form's function has them (the residual's left out)."""
    slot = len(forms.core.inputs) - 1
    return _Arguments([*core.args[:slot], *core.args[slot + 1:]], core.module)
