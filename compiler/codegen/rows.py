"""row_kernel (passes/rows.py): softmax, layernorm and kin as a few sweeps over each row.

For each row (R index) the inner nodes are scheduled into sweeps: a node runs in the first
sweep where all its inputs are available, a reduction's result from the next sweep on. Values
that vary along the row are computed inside a sweep; values that are one scalar per row
(reduction results and what is computed from them) once per row between sweeps. Each sweep is
one constant-trip loop over the row's n elements whose body is the elementwise scalar rules
(elementwise.scalar_rule, mathfn) plus the reductions' accumulations; LLVM's loop vectoriser
turns it into vector code (sums carry `reassoc`, so they accumulate in vector lanes; max/min
propagate NaN, see _Fast and _Exact). So softmax is 3 sweeps (max; exp and its sum; scale) and
layernorm 2 (both sums; normalise with gamma/beta), over a row that stays in L1.
The row dims before the last are one run-time count (an i64 argument, size_arguments) where every
load walks them as one flat dim and there are at least two of them: swin_t's twelve softmaxes over 64x3,
16x6, 4x12 and 1x24 windows x heads of 49 rows of 49 are one function (each was ~0.15 s of LLVM). The
last row dim stays a constant: the rows are blocked along it as before. The sums carry `reassoc`, so
LLVM may order them differently in another loop nest: a single lead row as an argument changed GPT-2's
layernorm bits, hence the two; swin_t, vit_b_16, BERT and GPT-2 give the same bits as with constants.
ROW_BLOCK rows share each sweep loop: a short row (n=128) is one long dependency chain (max,
exp, sum, divide), and interleaving rows lets them overlap. Transformer b1 softmax (4x128 rows
of 128): 23.6 us as 5 kernels -> 30 us one row at a time -> 15.6 us with blocks of 4 and _Fast.
A sweep with a transcendental (softmax's exp) takes blocks of 2 (COSTLY_ROW_BLOCK): mathfn's exp holds
a dozen constants and temporaries per vector, and 4 rows of them spilled (softmax thread CPU with blocks
of 2 against 4: [96,197,197] 0.83, [12,197,197] 0.91, [4,128,128] 0.89, swin's 49-wide rows 1.01);
layernorm keeps 4 (2 measured 1.14x slower on [8,197,768]).

A row value needed again by a later sweep (softmax's exp) is kept in the output row itself when
the output is a full row (its n elements belong to this row until the last sweep writes them,
and the last sweep reads each element before it overwrites it): no stack scratch, which matters
inside the kernel where stacks are small. Only the most expensive such value is kept (by its
cone: transcendentals count 20, others 1); the rest are recomputed.
"""

from __future__ import annotations

import math
import struct

from llvmlite import ir

from cerebro.compiler.codegen.elementwise import scalar_rule
from cerebro.compiler.codegen.llvm_types import constant, element_type, index, intrinsic, load_value, store_value
from cerebro.compiler.codegen.loops import fold_range, i64
from cerebro.compiler.codegen.mathfn import UNARY as TRANSCENDENTAL
from cerebro.compiler.codegen.partition import for_outer, for_phases, parts_of, share, unflatten
from cerebro.compiler.codegen.reduce import identity
from cerebro.compiler.codegen.registry import EmitContext, SizeRules, emitter, sizes_as_arguments, unsupported
from cerebro.compiler.ir import Node, Value
from cerebro.compiler.ir.dtypes import DType
from cerebro.compiler.ir.fused import ROW_KERNEL, ROW_REDUCTIONS
from cerebro.compiler.ir.ops import Role, names
from cerebro.compiler.ir.strides import contiguous_strides

_VIEWS = frozenset(names(role=Role.VIEW) + names(role=Role.BROADCAST))  # pass their input's value through
ROW_BLOCK = 4  # rows swept side by side, so their dependency chains overlap
COSTLY_ROW_BLOCK = 2  # fewer for a body with a transcendental (softmax's exp): 4 rows of its vectors spill
FAST_CHECK_COST = 4  # max/min inputs at most this costly to recompute take _Fast (and its NaN check)
COSTLY = frozenset(TRANSCENDENTAL) | {"pow", "rem"}  # mathfn's loops of many instructions per element


class Schedule:
    """Which values vary along the row, when each is available, which one is kept, how many sweeps."""

    def __init__(self, node: Node) -> None:
        self.nodes: list[Node] = list(node.attrs["nodes"])
        self.loads = {vid: (slot, rs, cs) for vid, slot, rs, cs in node.attrs["loads"]}
        self.made = {inner.outputs[0].id: inner for inner in self.nodes}
        self.varies = {vid for vid, (_, _, cs) in self.loads.items() if cs != 0}
        self.ready = dict.fromkeys(self.loads, 0)  # value id -> first sweep it can be used in
        self.sweep: dict[int, int] = {}  # reduction output id -> the sweep that accumulates it
        for inner in self.nodes:
            out = inner.outputs[0].id
            at = max((self.ready[v.id] for v in inner.inputs), default=0)
            if inner.op in ROW_REDUCTIONS:
                self.sweep[out], self.ready[out] = at, at + 1
            else:
                self.ready[out] = at
                if any(v.id in self.varies for v in inner.inputs):
                    self.varies.add(out)
        self.out = node.outputs[0]
        self.full_row = self.out.shape == tuple(node.attrs["rows"]) + (node.attrs["n"],)
        last = max(self.sweep.values()) + 1
        self.count = max(last, self.ready[self.out.id] + 1) if self.full_row else last
        self.kept = self._kept() if self.full_row else None

    def _walk(self, sweep: int) -> set[int]:
        """Row values `sweep` evaluates when nothing is kept."""
        roots = [inner.inputs[0].id for inner in self.nodes if self.sweep.get(inner.outputs[0].id) == sweep]
        if sweep == self.count - 1 and self.full_row:
            roots.append(self.out.id)
        seen: set[int] = set()
        while roots:
            vid = roots.pop()
            if vid in seen or vid not in self.varies or vid not in self.made:
                continue
            seen.add(vid)
            roots.extend(v.id for v in self.made[vid].inputs)
        return seen

    def cost(self, vid: int) -> int:
        """What recomputing row value vid costs per element (a transcendental, pow or fmod 20, other ops 1,
        loads 0)."""
        total, roots, seen = 0, [vid], set()
        while roots:
            v = roots.pop()
            if v in seen or v not in self.made or v not in self.varies:
                continue
            seen.add(v)
            inner = self.made[v]
            total += 20 if inner.op in COSTLY else 0 if inner.op in _VIEWS else 1
            roots.extend(x.id for x in inner.inputs)
        return total

    def _kept(self) -> int | None:
        again = {vid for s in range(self.count) for vid in self._walk(s)
                 if self.ready[vid] < s and self.made[vid].op not in _VIEWS}
        return max(again, key=self.cost, default=None)


def _row_block(node: Node) -> int:
    """Rows per block: COSTLY_ROW_BLOCK when a sweep computes a transcendental, pow or fmod."""
    varies = Schedule(node).varies
    costly = any(inner.op in COSTLY and inner.outputs[0].id in varies for inner in node.attrs["nodes"])
    return COSTLY_ROW_BLOCK if costly else ROW_BLOCK


def _row_units(node: Node) -> tuple[list[int], int, list[int]]:
    """(lead dims, block, units per phase of one lead index): blocks of _row_block rows of the last row
    dim, then its leftover rows one by one."""
    rows = tuple(node.attrs["rows"])
    lead, last = list(rows[:-1]), rows[-1]
    block = _row_block(node) if last >= _row_block(node) else 1
    return lead, block, [last // block, last % block]


def _lead_stride(lead: tuple[int, ...], strides: tuple[int, ...]) -> int | None:
    """The stride s of a walk over the lead dims flattened row-major (strides[i] == s * prod(lead[i+1:])
    wherever lead[i] > 1), None if the walk is not one flat dim."""
    flat, inner = None, 1
    for size, stride in zip(reversed(lead), reversed(strides)):
        if size > 1:
            if flat is None and stride % inner == 0:
                flat = stride // inner
            if flat is None or stride != flat * inner:
                return None
        inner *= size
    return flat or 0


def _lead_strides(node: Node) -> list[int] | None:
    """Each load's flat stride over the lead row dims (_lead_stride), or None: the lead dims stay constants."""
    lead = tuple(node.attrs["rows"])[:-1]
    if math.prod(lead) < 2:  # nothing to share: one row block of constant bounds
        return None
    strides = [_lead_stride(lead, tuple(rs[:-1])) for _, _, rs, _ in node.attrs["loads"]]
    return None if None in strides else strides


def size_arguments(node: Node) -> list[int]:
    """The sizes the node function takes as trailing i64 arguments: the lead rows, when they are flat."""
    return [math.prod(node.attrs["rows"][:-1])] if _lead_strides(node) is not None else []


_PLAIN = (bool, int, str, type(None))


def _plain(item: object) -> object:
    """An inner node's attr as a key, or TypeError for what this does not describe (kernel_key's job)."""
    if isinstance(item, _PLAIN):
        return (type(item).__name__, item)
    if isinstance(item, float):
        return ("float", struct.pack("<d", item))
    if isinstance(item, DType):
        return ("dtype", item.name)
    if isinstance(item, (tuple, list)):
        return tuple(map(_plain, item))
    raise TypeError(type(item).__name__)


def runtime_shapes(node: Node, target: object) -> tuple[dict[int, tuple], tuple, dict[str, object]] | None:
    """For kernel_key: (value id -> shape, the choices the emitter makes, attr -> its key) with the lead
    rows left out, or None when they are constants. The description keeps what the emitter reads: the
    last row dim, n, each load's slot, flat lead stride, last-dim and column strides, and the inner nodes'
    ops, attrs (not a view's: it passes its input on), dtypes and wiring (values numbered as met)."""
    strides = _lead_strides(node)
    if strides is None:
        return None
    numbers: dict[int, int] = {}

    def number(vid: int) -> int:
        return numbers.setdefault(vid, len(numbers))

    loads = tuple((number(vid), slot, lead, rs[-1], cs)
                  for (vid, slot, rs, cs), lead in zip(node.attrs["loads"], strides))
    try:
        inner = tuple((n.op, () if n.op in _VIEWS else tuple((k, _plain(v)) for k, v in sorted(n.attrs.items())),
                       tuple((number(v.id), v.dtype.name) for v in n.inputs),
                       tuple((number(v.id), v.dtype.name) for v in n.outputs)) for n in node.attrs["nodes"])
    except TypeError:
        return None
    out = node.outputs[0]
    full_row = out.shape == tuple(node.attrs["rows"]) + (node.attrs["n"],)
    shapes = {v.id: (None,) for v in (*node.inputs, *node.outputs)}
    return shapes, (number(out.id), full_row), {"rows": ("lead", node.attrs["rows"][-1]), "loads": loads,
                                                "nodes": inner}


def row_kernel_units(node: Node, target: object, parts: int) -> int:
    if not node.attrs["rows"]:
        return 1
    lead, _, counts = _row_units(node)
    return math.prod(lead) * sum(counts)


@emitter(ROW_KERNEL, units=row_kernel_units)
def emit_row_kernel(ctx: EmitContext, node: Node, fn: ir.Function) -> None:
    dtype = node.outputs[0].dtype
    if dtype not in (DType.f32, DType.f64):
        raise unsupported(node, f"row_kernel on {dtype.name}")
    _RowEmitter(node, fn, Schedule(node)).emit()


class _Sum:
    """A sum in vector lanes: `reassoc` lets the loop vectoriser keep partial sums per lane."""

    size = 1

    @staticmethod
    def inits(elem: ir.Type, op: str, dtype: DType) -> list[ir.Value]:
        return [constant(elem, 0)]

    @staticmethod
    def step(b: ir.IRBuilder, op: str, accs: list[ir.Value], x: ir.Value) -> list[ir.Value]:
        return [b.fadd(accs[0], x, flags=("reassoc",))]

    @staticmethod
    def finish(b: ir.IRBuilder, accs: list[ir.Value]) -> ir.Value:
        return accs[0]


class _Exact:
    """max/min as llvm.maximum/minimum (reduce.py's rule): NaN-propagating for any input."""

    size = 1

    @staticmethod
    def inits(elem: ir.Type, op: str, dtype: DType) -> list[ir.Value]:
        return [constant(elem, identity(op, dtype))]

    @staticmethod
    def step(b: ir.IRBuilder, op: str, accs: list[ir.Value], x: ir.Value) -> list[ir.Value]:
        name = "llvm.maximum" if op == "reduce_max" else "llvm.minimum"
        return [b.call(intrinsic(b.module, name, x.type, 2), [accs[0], x])]

    finish = _Sum.finish


class _Fast(_Exact):
    """max/min of a loaded row: maxnum/minnum with `nnan nsz` (one vmaxps on x86, where llvm.maximum's
    signed-zero order costs a 5-instruction chain per vector and blocks the row's other chains). A
    NaN makes the running value poison, so the emitter checks the row for NaN in a separate integer
    loop (which vectorises; the same check inside the sweep stopped the vectoriser) and selects NaN.
    A zero's sign is not part of the IR's max semantics (ir/ops.py), so `nsz` holds too; without it
    LLVM 22 vectorises maxnum as a NaN-checking loop (vcmpunordps per vector, an exit test and
    spills: softmax over [96,197,197] 3.5% and [12,197,197] 6.6% slower, same bits)."""

    @staticmethod
    def step(b: ir.IRBuilder, op: str, accs: list[ir.Value], x: ir.Value) -> list[ir.Value]:
        name = "llvm.maxnum" if op == "reduce_max" else "llvm.minnum"
        return [b.call(intrinsic(b.module, name, x.type, 2), [accs[0], x], fastmath=("nnan", "nsz"))]


class _Row:
    """One row being emitted: where its loads start, where its output starts, its per-row values."""

    def __init__(self, row: ir.Value, out_row: ir.Value, bases: dict[int, ir.Value]) -> None:
        self.row, self.out_row, self.bases = row, out_row, bases
        self.scalars: dict[int, ir.Value] = {}


class _RowEmitter:
    def __init__(self, node: Node, fn: ir.Function, plan: Schedule) -> None:
        self.node, self.fn, self.plan = node, fn, plan
        self.b = ir.IRBuilder(fn.append_basic_block("entry"))
        self.rows, self.n = tuple(node.attrs["rows"]), node.attrs["n"]
        # the row index space: lead dims, then the last row dim; strides of the output rows and of each load
        self.lead: list[int | ir.Value] = list(self.rows[:-1])
        self.row_strides = contiguous_strides(self.rows)
        self.load_strides = {vid: rs for vid, _, rs, _ in node.attrs["loads"]}
        if len(node.inputs) + len(node.outputs) + 2 < len(fn.args):  # module.py passes size_arguments
            self.lead, self.row_strides = [fn.args[-1]], (self.rows[-1], 1)  # one flat run-time lead dim
            self.load_strides = {vid: (lead, rs[-1]) for (vid, _, rs, _), lead in
                                 zip(node.attrs["loads"], _lead_strides(node))}
        self.pout = fn.args[len(node.inputs)]
        self.dtype = node.outputs[0].dtype
        self.rules = {inner.outputs[0].id: scalar_rule(inner) for inner in plan.nodes
                      if inner.op not in ROW_REDUCTIONS and inner.op not in _VIEWS}

    def emit(self) -> None:
        """Rows in blocks (_row_block) along the last row dim (then the leftover rows one by one); in a
        call split into parts, this part's share of those blocks and leftover rows."""
        b = self.b
        part, parts = parts_of(b, self.node, self.fn)
        if not self.rows:
            lo, hi = share(b, 1, part, parts)
            for_phases(b, lo, hi, [1], lambda phase, unit: self._block([[]]), "row")
        else:
            _, block, counts = _row_units(self.node)
            lead, last = self.lead, self.rows[-1]
            outer = lead[0] if lead and isinstance(lead[0], ir.Value) else math.prod(lead)
            units = outer * sum(counts) if isinstance(outer, int) else b.mul(outer, i64(sum(counts)))
            lo, hi = share(b, units, part, parts)
            with for_outer(b, outer, sum(counts), lo, hi, "row") as (flat, begin, end):
                idx = unflatten(b, flat, lead)

                def unit(phase: int, i: ir.Value) -> None:
                    if phase == 0:
                        first = b.mul(i, i64(block), flags=("nsw", "nuw"))
                        self._block([idx + [b.add(first, i64(j), flags=("nsw", "nuw"))] for j in range(block)])
                    else:
                        self._block([idx + [b.add(i, i64(last - last % block), flags=("nsw", "nuw"))]])

                for_phases(b, begin, end, counts, unit, "rb")
        b.ret_void()

    def _block(self, indices: list[list[ir.Value]]) -> None:
        """Rows whose sweeps run side by side: their dependency chains interleave."""
        b, plan = self.b, self.plan
        rows = []
        for idx in indices:
            row = index(b, 0, *zip(idx, self.row_strides), nonnegative=True)
            out_row = b.mul(row, i64(self.n), flags=("nsw", "nuw")) if plan.full_row else row
            bases = {vid: index(b, 0, *zip(idx, rs), nonnegative=True) for vid, rs in self.load_strides.items()}
            rows.append(_Row(row, out_row, bases))
        for sweep in range(plan.count):
            for row in rows:
                self._row_scalars(row, sweep)
            self._sweep(rows, sweep)
        if not plan.full_row:
            for row in rows:
                self._row_scalars(row, plan.count)
                store_value(b, row.scalars[plan.out.id], self.pout, row.row, self.dtype)

    def _load(self, vid: int, at: ir.Value) -> ir.Value:
        slot = self.plan.loads[vid][0]
        return load_value(self.b, self.fn.args[slot], at, self.node.inputs[slot].dtype)

    def _row_scalars(self, row: _Row, sweep: int) -> None:
        """Every per-row value available by `sweep`, computed once per row (outside the sweep loops)."""
        plan = self.plan
        for vid in plan.loads:
            if vid not in plan.varies and vid not in row.scalars:
                row.scalars[vid] = self._load(vid, row.bases[vid])
        for inner in plan.nodes:
            vid = inner.outputs[0].id
            if vid in plan.varies or vid in row.scalars or plan.ready[vid] > sweep or inner.op in ROW_REDUCTIONS:
                continue
            args = [row.scalars[v.id] for v in inner.inputs]
            row.scalars[vid] = args[0] if inner.op in _VIEWS else self.rules[vid](self.b, *args)

    def _sweep(self, rows: list[_Row], sweep: int) -> None:
        """One loop over the columns of every row in the block."""
        b, plan = self.b, self.plan
        reductions = [inner for inner in plan.nodes if plan.sweep.get(inner.outputs[0].id) == sweep]
        elem = element_type(self.dtype)
        folds = [self._fold(r) for r in reductions]
        inits = [acc for r, fold in zip(reductions, folds) for acc in fold.inits(elem, r.op, self.dtype)]
        count = len(inits)
        with fold_range(b, self.n, inits * len(rows), f"sweep{sweep}") as (col, carry):
            carry.values = [acc for k, row in enumerate(rows) for acc in self._element_step(
                row, sweep, reductions, col, carry.values[k * count:(k + 1) * count])]
        for k, row in enumerate(rows):
            accs = carry.values[k * count:(k + 1) * count]
            for r, fold in zip(reductions, folds):
                row.scalars[r.outputs[0].id] = fold.finish(b, accs[:fold.size])
                accs = accs[fold.size:]
        for r, fold in zip(reductions, folds):
            if fold is _Fast:
                self._nan_check(rows, r, sweep)

    def _fold(self, reduction: Node) -> type:
        """_Fast when its NaN check is cheap: the input is a load or a few cheap ops on loads."""
        if reduction.op == "reduce_sum":
            return _Sum
        return _Fast if self.plan.cost(reduction.inputs[0].id) <= FAST_CHECK_COST else _Exact

    def _nan_check(self, rows: list[_Row], reduction: Node, sweep: int) -> None:
        """A _Fast result becomes NaN where its row holds a NaN: max of |bits| over the row > inf's bits."""
        b = self.b
        x = reduction.inputs[0].id
        bits = ir.IntType(8 * self.dtype.itemsize)
        magnitude = ir.Constant(bits, (1 << (bits.width - 1)) - 1)
        infinity = ir.Constant(bits, 0x7F800000 if bits.width == 32 else 0x7FF0000000000000)
        umax = intrinsic(b.module, "llvm.umax", bits, 2)
        with fold_range(b, self.n, [ir.Constant(bits, 0)] * len(rows), "nan") as (col, carry):
            largest = []
            for row, acc in zip(rows, carry.values):
                element = self._element(row, x, col, sweep, {})
                largest.append(b.call(umax, [acc, b.and_(b.bitcast(element, bits), magnitude)]))
            carry.values = largest
        nan = ir.Constant(element_type(self.dtype), float("nan"))
        for row, largest in zip(rows, carry.values):
            vid = reduction.outputs[0].id
            row.scalars[vid] = b.select(b.icmp_unsigned(">", largest, infinity), nan, row.scalars[vid])

    def _element_step(self, row: _Row, sweep: int, reductions: list[Node], col: ir.Value, accs: list[ir.Value]
                      ) -> list[ir.Value]:
        """Column col of one row in the sweep: fold into the reductions, keep the kept value, store the output."""
        b, plan = self.b, self.plan
        memo: dict[int, ir.Value] = {}

        def value(v: Value) -> ir.Value:
            return self._element(row, v.id, col, sweep, memo)

        folded = []
        for r in reductions:
            fold = self._fold(r)
            folded += fold.step(b, r.op, accs[:fold.size], value(r.inputs[0]))
            accs = accs[fold.size:]
        at = index(b, 0, (row.out_row, 1), (col, 1)) if plan.full_row else None
        if plan.kept is not None and plan.ready[plan.kept] == sweep and sweep < plan.count - 1:
            store_value(b, value(plan.made[plan.kept].outputs[0]), self.pout, at, self.dtype)
        if plan.full_row and sweep == plan.count - 1:
            store_value(b, value(plan.out), self.pout, at, self.dtype)
        return folded

    def _element(self, row: _Row, vid: int, col: ir.Value, sweep: int, memo: dict[int, ir.Value]) -> ir.Value:
        """Value vid at column col of the row, inside the loop of `sweep`."""
        if vid in row.scalars:
            return row.scalars[vid]
        if vid in memo:
            return memo[vid]
        b, plan = self.b, self.plan
        if vid in plan.loads:
            result = self._load(vid, index(b, 0, (row.bases[vid], 1), (col, plan.loads[vid][2])))
        elif vid == plan.kept and plan.ready[vid] < sweep:
            result = load_value(b, self.pout, index(b, 0, (row.out_row, 1), (col, 1)), self.dtype)
        else:
            inner = plan.made[vid]
            args = [self._element(row, v.id, col, sweep, memo) for v in inner.inputs]
            result = args[0] if inner.op in _VIEWS else self.rules[vid](b, *args)
        memo[vid] = result
        return result


sizes_as_arguments(SizeRules(size_arguments, runtime_shapes), ROW_KERNEL)
